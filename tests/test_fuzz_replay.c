/* test_fuzz_replay.c - every fuzz target's seed corpus and regression inputs (tests/fuzz/corpus/<target>/,
 * tests/fuzz/regressions/<target>/) replayed through the targets' own functions (tests/fuzz/fuzz.h), so
 * that a bug the fuzzer found stays fixed on machines without clang: a crash, a hang (the test timeout) or,
 * in the sanitizer build of scripts/test.sh, a sanitizer report fails the test. */
#include "testutil.h"
#include "fuzz/fuzz.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *source_root(void)
{
    const char *r = getenv("VIT_SOURCE_ROOT");
    return r && *r ? r : ".";
}

/* replay every file of dir through t; returns how many (-1: no such folder) */
static int replay_dir(const vt_fuzz_target *t, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", p);
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)len + 1);
        ck_assert(buf != NULL);
        ck_assert_int_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        printf("replay %s/%s (%ld bytes)\n", t->name, e->d_name, len);
        fflush(stdout);
        t->run(buf, (size_t)len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(replay_target)
{
    const vt_fuzz_target *t = &vt_fuzz_targets[_i];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", source_root(), t->name);
    int seeds = replay_dir(t, dir);
    ck_assert_msg(seeds > 0, "%s: no seed corpus", dir);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", source_root(), t->name);
    int regressions = replay_dir(t, dir);
    printf("%s: %d seeds, %d regression inputs replayed\n", t->name, seeds, regressions < 0 ? 0 : regressions);
}
END_TEST

/* a regression folder must belong to a target (a misspelt one would replay nothing) */
START_TEST(regression_folders_name_targets)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions", source_root());
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        bool known = false;
        for (const vt_fuzz_target *t = vt_fuzz_targets; t->name; t++) known |= strcmp(t->name, e->d_name) == 0;
        ck_assert_msg(known, "tests/fuzz/regressions/%s: no fuzz target of that name", e->d_name);
    }
    closedir(d);
}
END_TEST

int main(void)
{
    int n = 0;
    while (vt_fuzz_targets[n].name) n++;
    Suite *s = suite_create("fuzz_replay");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, replay_target, 0, n);
    tcase_add_test(tc, regression_folders_name_targets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
