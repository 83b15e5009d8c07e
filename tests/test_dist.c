/* test_dist.c - the bucketed gradient sum over ranks: bitwise the sum in the in-process replicas' order
 * (vt_tree_split's tree: rank order for 2 and 3 ranks), in any bucketing, in buffer order or from the end
 * (as backward produces gradients), step after step. Run alone (one rank) and under mpirun -n 2 / 3 / 4
 * (tests/meson.build). Check runs in-process here (CK_NOFORK): MPI is initialised once per process. */
#include "dist/dist.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vt_dist D;

/* rank k's gradient element i: a pure function of (k, i, step), of mixed magnitudes so that the order
 * of the additions shows in the last bits */
static float grad(int k, int64_t i, int step)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull ^ ((uint64_t)k + 1) * 0xBF58476D1CE4E5B9ull ^ (uint64_t)step * 0x94D049BB133111EBull;
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 29;
    const float u = (float)(h >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
    return u * (float)(1 << (h & 7));
}

/* the ranks' values [lo, hi) added in vt_tree_split's order, the in-process replicas' */
static float tree(int64_t i, int step, int lo, int hi)
{
    if (hi - lo == 1) return grad(lo, i, step);
    const int mid = lo + vt_tree_split(hi - lo);
    return tree(i, step, lo, mid) + tree(i, step, mid, hi);
}

static float expected(int64_t i, int step) { return tree(i, step, 0, D.size); }

/* the tree is the rank order for 2 and 3 ranks, pairs of pairs for 4 */
START_TEST(tree_order)
{
    ck_assert_int_eq(vt_tree_split(2), 1);
    ck_assert_int_eq(vt_tree_split(3), 2);
    ck_assert_int_eq(vt_tree_split(4), 2);
    ck_assert_int_eq(vt_tree_split(5), 4);
    ck_assert_int_eq(vt_tree_split(8), 4);
}
END_TEST

/* one summation of n floats in buckets of `bucket`, started in a few groups with progress between: in
 * buffer order, or from the end as the final suffix of the buffer grows */
static void check_sum(int64_t n, int64_t bucket, int steps, bool from_end)
{
    float *buf = malloc(sizeof(float) * (size_t)(n ? n : 1)), *want = malloc(sizeof(float) * (size_t)(n ? n : 1));
    ck_assert_ptr_nonnull(buf);
    vt_dist_sum s;
    ck_assert_msg(vt_dist_sum_init(&s, &D, buf, n, bucket) == VT_OK, "%s", vt_errmsg());
    s.from_end = from_end;
    for (int step = 0; step < steps; step++) {
        for (int64_t i = 0; i < n; i++) buf[i] = grad(D.rank, i, step), want[i] = expected(i, step);
        for (int b = 0; b < s.nb && !from_end; b += 3) {   /* as backward finishes parameters: a few buckets at a time */
            ck_assert(vt_dist_sum_start_upto(&s, b) == VT_OK);
            ck_assert(vt_dist_sum_progress(&s) == VT_OK);
        }
        for (int64_t from = n; from_end && from > 0; from -= 1 + from / 3) {   /* final: [from, n), growing */
            ck_assert(vt_dist_sum_start_suffix(&s, from) == VT_OK);
            ck_assert(vt_dist_sum_progress(&s) == VT_OK);
        }
        ck_assert_msg(vt_dist_sum_wait(&s) == VT_OK, "%s", vt_errmsg());
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(memcmp(&buf[i], &want[i], sizeof(float)) == 0,
                          "rank %d/%d, n %lld, bucket %lld%s, step %d: element %lld is %.9g, the sum in tree order %.9g",
                          D.rank, D.size, (long long)n, (long long)bucket, from_end ? " from the end" : "", step,
                          (long long)i, buf[i], want[i]);
    }
    vt_dist_sum_free(&s);
    free(buf);
    free(want);
}

START_TEST(sum_is_rank_order)
{
    const int64_t ns[] = {0, 1, 2, 5, 1000, 100003};
    const int64_t buckets[] = {1, 3, 7, 1024, 1 << 20};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
            if (ns[a] / buckets[b] >= VT_DIST_MAX_BUCKETS) continue;
            check_sum(ns[a], buckets[b], 2, false);
            check_sum(ns[a], buckets[b], 2, true);
        }
}
END_TEST

/* the check above can fail: with 3 or more ranks another order of the same additions (one after the
 * other from the last rank: not a mirror of the tree) gives other bits */
START_TEST(order_shows_in_the_bits)
{
    if (D.size < 3) return;
    int differ = 0;
    for (int64_t i = 0; i < 10000; i++) {
        float a = expected(i, 0), b = grad(D.size - 1, i, 0);
        for (int k = D.size - 2; k >= 0; k--) b += grad(k, i, 0);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    ck_assert_int_gt(differ, 100);
}
END_TEST

START_TEST(bucket_of_and_bad_sizes)
{
    float buf[10];
    vt_dist_sum s;
    ck_assert(vt_dist_sum_init(&s, &D, buf, 10, 4) == VT_OK);
    ck_assert_int_eq(s.nb, 3);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 0), 0);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 3), 0);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 4), 1);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 9), 2);
    s.from_end = true;   /* [6, 10), [2, 6), [0, 2) */
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 9), 0);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 6), 0);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 5), 1);
    ck_assert_int_eq(vt_dist_sum_bucket_of(&s, 1), 2);
    ck_assert(vt_dist_sum_start_suffix(&s, 7) == VT_OK);   /* no bucket wholly final yet */
    ck_assert_int_eq(s.next, 0);
    ck_assert(vt_dist_sum_start_suffix(&s, 2) == VT_OK);
    ck_assert_int_eq(s.next, 2);
    ck_assert(vt_dist_sum_wait(&s) == VT_OK);
    vt_dist_sum_free(&s);
    ck_assert(vt_dist_sum_init(&s, &D, buf, 10, 0) == VT_ERR);
    ck_assert_ptr_nonnull(strstr(vt_errmsg(), "buckets of 0"));
    ck_assert(vt_dist_sum_init(&s, &D, buf, 100000, 1) == VT_ERR);
    ck_assert_ptr_nonnull(strstr(vt_errmsg(), "at most"));
}
END_TEST

START_TEST(ranks_agree)
{
    ck_assert_int_ge(D.size, 1);
    ck_assert_int_lt(D.rank, D.size);
    const char *want = getenv("VIT_TEST_RANKS");
    if (want) ck_assert_int_eq(D.size, atoi(want));   /* mpirun -n N really made N ranks */
    if (D.size > 1) ck_assert(vt_dist_available());
}
END_TEST

int main(int argc, char **argv)
{
    if (vt_dist_init(&D, &argc, &argv) != VT_OK) {
        fprintf(stderr, "test_dist: %s\n", vt_errmsg());
        return 1;
    }
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("sum");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ranks_agree);
    tcase_add_test(tc, tree_order);
    tcase_add_test(tc, sum_is_rank_order);
    tcase_add_test(tc, order_shows_in_the_bits);
    tcase_add_test(tc, bucket_of_and_bad_sizes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, D.rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed && D.rank > 0) fprintf(stderr, "test_dist: %d test(s) failed on rank %d of %d\n", failed, D.rank, D.size);
    vt_dist_finalize(&D);
    return failed ? 1 : 0;
}
