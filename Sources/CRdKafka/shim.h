#ifndef REGEN_CRDKAFKA_SHIM_H
#define REGEN_CRDKAFKA_SHIM_H

// The only C surface the RdKafka module sees: the client API and the mock
// cluster used as the embedded broker for the demo and the tests; and glibc's
// malloc tuning, for the arenas librdkafka's threads allocate from.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#endif
