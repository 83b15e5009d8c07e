/* train_fixtures.h - what the end-to-end vit-train tests share (test_train.c, test_train_mpi.c) */
#ifndef VIT_TESTS_TRAIN_FIXTURES_H
#define VIT_TESTS_TRAIN_FIXTURES_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

/* the test's folder (setup: /tmp/vit_train_XXXXXX with data/ (IDX train 320 and t10k 96 images of 8x8,
 * 4 classes) and a.ini (write_config(.., 8, ""))); teardown removes it */
extern char dir[256];
void setup(void);
void teardown(void);
/* when not 0: the largest file the next tools run may write, in bytes */
extern rlim_t child_fsize_limit;
/* n images of s x s whose class is where a bright square sits; gz or plain */
void write_idx(const char *folder, const char *prefix, int n, int s, bool gz, uint64_t seed, int classes);
/* the tests' small config (img x img images of dir/data) with extra lines at its end */
void write_config(const char *path, int img, const char *extra);
/* run the tool named by an environment variable (VIT_TRAIN_BIN, VIT_EVAL_BIN, ...) with arguments, its
 * output appended to log; returns the exit status (or -signal) */
int run_tool(const char *envvar, const char *const *args, const char *log);
int run(const char *const *args, const char *log);
/* the metrics rows without the img/s column (malloc'd) */
char *metrics_without_speed(const char *out);
/* bitwise the same /model tensors (and an /optimizer in both) */
void assert_same_weights(const char *a, const char *b);
/* the last 1500 characters of a log: enough for a failure message (Check refuses long ones) */
const char *tail(const char *text);
char *read_log(const char *log);
/* args + extra (NULL-terminated) into out (NULL-terminated) */
void join_args(const char **out, int cap, const char *const *args, const char *const *extra);
/* a straight run into outA, and a run into outB stopped after 25 of its 60 steps then resumed with
 * --resume auto, both with the extra arguments: the same metrics.csv losses and bitwise the same weights */
void assert_stop_resume_exact(const char *cfg, const char *outA, const char *outB, const char *log,
                              const char *const *extra);
/* a gray PNG of (h, w) whose bright quadrant is the class */
void write_class_png(const char *path, int h, int w, int cls, int seed);

#endif
