/* libFuzzer harness: the YAML job parser (dm_config_parse_string, include/depthmatte/config.h).
 *
 * Every input is parsed twice: once without the cross-key checks (validate = 0, so that inputs
 * missing required keys still reach every schema row) and once with them. A job that parses is
 * also printed back (dm_config_to_string) and re-parsed: config.h promises that the printed
 * effective configuration is accepted by the parser, so a rejection is a bug and aborts (the
 * fuzzer then saves the input). Besides crashes, ASan/UBSan catch out-of-bounds accesses, leaks
 * on the error paths and undefined arithmetic. Relative paths stay relative (base_dir NULL) so
 * that nothing depends on the working directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/config.h"
#include "depthmatte/status.h"

static void round_trip(const dm_job *job) {
    char *text = NULL;
    if (dm_config_to_string(job, &text) != DM_OK) return; /* out of memory only */
    dm_job again;
    memset(&again, 0, sizeof again);
    dm_status st = dm_config_parse_string(text, "printed.yaml", NULL, 0, &again);
    if (st != DM_OK) {
        fprintf(stderr, "fuzz_config: printed config rejected: %s\n--- printed ---\n%s\n",
                dm_error_message(), text);
        abort();
    }
    dm_job_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the parser takes a C string: stop at the first NUL, as a file read into a string would */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (int validate = 0; validate <= 1; validate++) {
        dm_job job;
        memset(&job, 0, sizeof job);
        if (dm_config_parse_string(text, "fuzz.yaml", NULL, validate, &job) == DM_OK) {
            if (validate) round_trip(&job);
            dm_job_free(&job);
        }
    }
    free(text);
    return 0;
}
