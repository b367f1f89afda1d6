/*
 * libtrace/nvtx.c — NVTX ranges in a build without NVTX: nothing to do.
 * With NVTX, nvtx_nvtx.c provides them and this file compiles to nothing.
 */
#include "config.h"
#include "internal.h"

#ifndef PT_HAVE_NVTX
void pt_nvtx_push(const char *name)
{
	(void)name;
}
void pt_nvtx_pop(void)
{
}
#endif
