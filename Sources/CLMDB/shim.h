#ifndef DWCP_CLMDB_SHIM_H
#define DWCP_CLMDB_SHIM_H
#include <lmdb.h>
#endif
