/* SHA-256 of a weights file (OpenSSL libcrypto, EVP digest API), hex-encoded for the
 * weights_sha256 attributes of the output datasets: the file then says exactly which weights
 * produced it (compare with `sha256sum FILE`). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "pl_internal.h"

dm_status pl_sha256_file(const char *path, char hex[65]) {
    hex[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return dm_error_set(DM_ERR_IO, "%s: cannot open for SHA-256: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    dm_status st = DM_OK;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        st = dm_error_set(DM_ERR_NOMEM, "%s: EVP_DigestInit_ex(sha256) failed", path);
    static _Thread_local unsigned char buf[1 << 16];
    while (!st) {
        size_t n = fread(buf, 1, sizeof buf, f);
        if (n > 0 && EVP_DigestUpdate(md, buf, n) != 1)
            st = dm_error_set(DM_ERR_IO, "%s: EVP_DigestUpdate failed", path);
        if (n < sizeof buf) {
            if (ferror(f)) st = dm_error_set(DM_ERR_IO, "%s: read error while hashing", path);
            break;
        }
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!st && (EVP_DigestFinal_ex(md, d, &len) != 1 || len != 32))
        st = dm_error_set(DM_ERR_IO, "%s: EVP_DigestFinal_ex failed", path);
    if (!st)
        for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    EVP_MD_CTX_free(md);
    fclose(f);
    return st;
}
