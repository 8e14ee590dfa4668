/* docs/config.md must embed exactly the schema table the code uses (dm_config_print_schema),
 * between the markers <!-- schema:begin --> and <!-- schema:end -->, so that every key, type,
 * default and description in the docs is the one the parser applies.
 * `test_config_docs --print` writes the table to stdout, to paste into the docs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "depthmatte/config.h"
#include "tensor_compare.h"

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        dm_config_print_schema(stdout);
        return 0;
    }
    char *table = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&table, &size);
    CHECK(mem != NULL);
    if (!mem) return 1;
    dm_config_print_schema(mem);
    fclose(mem);

    const char *path = DM_SOURCE_DIR "/docs/config.md";
    char *doc = read_all(path);
    CHECK(doc != NULL);
    if (!doc) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    const char *begin_tag = "<!-- schema:begin -->\n", *end_tag = "<!-- schema:end -->";
    char *b = strstr(doc, begin_tag);
    char *e = b ? strstr(b, end_tag) : NULL;
    CHECK(b && e);
    if (b && e) {
        b += strlen(begin_tag);
        *e = '\0';
        if (strcmp(b, table) != 0) {
            /* name the first differing line, to make the fix obvious */
            const char *x = b, *y = table;
            while (*x && *x == *y)
                x++, y++;
            while (x > b && x[-1] != '\n')
                x--, y--;
            fprintf(stderr,
                    "docs/config.md schema table differs from the code at:\n  docs: %.*s\n"
                    "  code: %.*s\nregenerate it with `test_config_docs --print`\n",
                    (int)strcspn(x, "\n"), x, (int)strcspn(y, "\n"), y);
            tc_failure_count++;
        }
    }
    /* The prose must state the path-resolution rule the loader applies. */
    CHECK(strstr(doc, "relative to the folder of the job file") != NULL);
    free(doc);
    free(table);
    printf("test_config_docs: %d failure(s)\n", tc_failure_count);
    return tc_failure_count != 0;
}
