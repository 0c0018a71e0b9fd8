#ifndef POSMINI_FUZZ_DRIVER_H
#define POSMINI_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>
/* libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): runs `callback` on inputs as
   libFuzzer's own main would, with its command-line options. SwiftPM gives each executable its
   own entry point, so the targets call this instead of relying on libFuzzer's main. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
