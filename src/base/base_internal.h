/* base_internal.h - helpers shared between files of src/base; not public. */
#ifndef VIT_BASE_INTERNAL_H
#define VIT_BASE_INTERNAL_H
#include "base.h"
#include <stdio.h>

/* the file of an open HDF5 object for a message; needs a char fbuf[] in scope */
#define FNAME(loc) vt_h5_filename(loc, fbuf, sizeof fbuf)

#endif
