/* fuzz_config.c - the INI parser: the input as a config file (vt_config_load, as vit-train --config reads
 * it) and its lines as --set assignments (vt_config_set). An accepted config must write out as text that
 * reads back to the same config (the promise config.ini keeps: feeding it back reproduces the run). */
#include "fuzz.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* c written as INI text (malloc'd) */
static char *written(const vt_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vt_fuzz_require(f != NULL, "config", "open_memstream failed");
    vt_fuzz_require(vt_config_write(c, f) == VT_OK, "config", "vt_config_write failed");
    fclose(f);
    return buf;
}

/* an accepted config: the checks after parsing run (they may refuse it), and it reads back as written */
static void accepted(const vt_config *c)
{
    if (vt_config_validate(c) != VT_OK) vt_fuzz_require_msg("config");
    vt_vit_config mc;
    if (vt_config_model(c, &mc) != VT_OK) vt_fuzz_require_msg("config");
    char *t1 = written(c);
    vt_config c2;
    vt_config_defaults(&c2);
    if (vt_config_load_text(&c2, t1, "config.ini") != VT_OK) {
        fprintf(stderr, "fuzz config: the written config does not read back: %s\n%s\n", vt_errmsg(), t1);
        abort();
    }
    char *t2 = written(&c2);
    if (strcmp(t1, t2) != 0) {
        fprintf(stderr, "fuzz config: the written config reads back as another one:\n%s\n---\n%s\n", t1, t2);
        abort();
    }
    free(t1);
    free(t2);
}

int vt_fuzz_config(const uint8_t *data, size_t size)
{
    const char *path = vt_fuzz_write(0, vt_fuzz_dir(), "fuzz.ini", data, size);
    vt_config c;
    vt_config_defaults(&c);
    if (vt_config_load(&c, path) == VT_OK) accepted(&c);
    else vt_fuzz_require_msg("config");
    /* each line as an override of the defaults (at most 16) */
    vt_config_defaults(&c);
    char line[1024];
    size_t at = 0;
    bool any = false;
    for (int k = 0; k < 16 && at < size; k++) {
        size_t e = at;
        while (e < size && data[e] != '\n') e++;
        size_t n = e - at < sizeof line - 1 ? e - at : sizeof line - 1;
        memcpy(line, data + at, n);
        line[n] = '\0';
        at = e + 1;
        if (strlen(line) != n) continue;   /* a NUL: not something a command line can hold */
        if (vt_config_set(&c, line) == VT_OK) any = true;
        else vt_fuzz_require_msg("config");
    }
    if (any) accepted(&c);
    return 0;
}
