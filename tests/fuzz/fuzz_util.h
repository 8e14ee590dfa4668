/* Shared helper of the libFuzzer harnesses: hand the fuzzer's bytes to an API that wants a
 * file path, without touching the disk. The bytes go into an anonymous memory file
 * (memfd_create); "/proc/self/fd/N" names it, and open()/fopen()/avio_open() see a regular
 * file of exactly that size. One memfd per process is reused (truncated) for every input, so a
 * long run neither leaks descriptors nor fills /tmp. */
#ifndef DM_FUZZ_UTIL_H
#define DM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Replaces the memory file's contents with data[0..size). Returns its path (static buffer),
 * or NULL if the memfd could not be created or written (the harness then skips the input). */
const char *fuzz_memfile(const uint8_t *data, size_t size);

#endif
