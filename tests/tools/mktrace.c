/*
 * tests/tools/mktrace.c — writes the synthetic traces of synth.h to a file,
 * for tests that drive the CLI (tests/e2e/browser.sh) rather than link the
 * library. Not installed; built by `make tests-build`.
 *
 *   mktrace markup OUT.db            names full of markup (the page must show them as text)
 *   mktrace big OUT.db EVENTS [RANKS] a large trace with GPU kernels
 */
#include <stdlib.h>
#include <string.h>

#include "synth.h"

int main(int argc, char **argv)
{
	int err;
	if (argc == 3 && !strcmp(argv[1], "markup")) {
		err = synth_markup(argv[2]);
	} else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "big")) {
		long long events = atoll(argv[3]);
		int ranks = argc == 5 ? atoi(argv[4]) : 8;
		if (events < 1 || ranks < 1) {
			fprintf(stderr, "mktrace: EVENTS and RANKS must be positive\n");
			return 2;
		}
		err = synth_big(argv[2], ranks, events, 20);
	} else {
		fprintf(stderr, "usage: mktrace markup OUT.db | mktrace big OUT.db EVENTS [RANKS]\n");
		return 2;
	}
	if (err)
		fprintf(stderr, "mktrace: %s: %s\n", argv[2], pt_strerror(err));
	return err ? 1 : 0;
}
