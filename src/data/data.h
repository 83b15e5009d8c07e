/* data.h - datasets behind one interface, per-sample transforms, and a prefetching batch loader.
 * Order and augmentation are pure functions of (seed, epoch, sample index): a run resumed in the
 * middle of an epoch sees exactly the samples and crops it would have seen. */
#ifndef VIT_DATA_H
#define VIT_DATA_H

#include <pthread.h>
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- datasets */
typedef struct vt_dataset vt_dataset;
struct vt_dataset {
    char path[1024];        /* what was opened (for messages) */
    const char *format;     /* "idx", "cifar", "hdf5" */
    int64_t count;          /* samples */
    int num_classes;
    int h, w, c;            /* stored image shape; pixels are uint8 (h, w, c) */
    /* read sample i (0 <= i < count): pixels (h*w*c) and label; thread-safe */
    int (*read)(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label);
    void (*close)(vt_dataset *ds);
    void *impl;
};

/* Open split "train" or "test" of the dataset at path. format: "auto" (detect), "idx" (a folder of
 * MNIST-style IDX files, plain or .gz), "cifar" (a folder of CIFAR-10/100 binary batches), "hdf5" (a
 * file with images (N, H, W, C) uint8 and labels (N,)). *out is NULL and vt_errmsg() names the file
 * on failure. A missing test split is not an error: *out is NULL and the return is VT_OK. */
int vt_dataset_open(vt_dataset **out, const char *path, const char *split, const char *format,
                    const char *images_key, const char *labels_key);
void vt_dataset_close(vt_dataset *ds);

/* ---------------------------------------------------------------- transforms */
typedef struct {
    int out_c, out_h, out_w;      /* what the model takes */
    float mean[4], std[4];        /* per output channel */
    bool train;                   /* augment (else: deterministic resize) */
    bool hflip;
    int crop_padding;             /* random crop after zero padding (train) */
    bool rrc;                     /* random-resized-crop (train) */
    double rrc_scale_min, rrc_ratio_min, rrc_ratio_max;
} vt_transform;

/* parse "0.5" or "0.5, 0.4, 0.3" into n values (one value is repeated) */
int vt_parse_floats(const char *text, float *out, int n, const char *what);
/* floats of scratch memory vt_transform_apply needs for a stored (h, w) image */
size_t vt_transform_scratch(const vt_transform *t, int h, int w);
/* uint8 (h, w, c) -> float (out_c, out_h, out_w); rng drives the augmentation */
void vt_transform_apply(const vt_transform *t, const uint8_t *pix, int h, int w, int c, float *out, vt_rng *rng,
                        float *scratch);
/* the RNG of sample i in epoch e of a run with this seed */
void vt_sample_rng(vt_rng *r, uint64_t seed, int64_t epoch, int64_t index);

/* ---------------------------------------------------------------- loader */
typedef struct vt_loader vt_loader;
typedef struct {
    vt_dataset *ds;
    const int64_t *indices;       /* subset of the dataset (NULL: all); copied */
    int64_t n;                    /* samples in the subset (ignored when indices is NULL) */
    vt_transform tf;
    int batch;
    bool shuffle, drop_last;
    uint64_t seed;
    int workers;                  /* 0: fill batches in the caller's thread */
    int prefetch;                 /* ring slots */
} vt_loader_config;

int vt_loader_create(vt_loader **out, const vt_loader_config *c);
void vt_loader_free(vt_loader *l);
/* batches per epoch */
int64_t vt_loader_batches(const vt_loader *l);
int64_t vt_loader_size(const vt_loader *l);
/* position the loader at batch k of epoch e (restarts the workers) */
int vt_loader_start(vt_loader *l, int64_t epoch, int64_t batch);
/* the next batch: images (B, C, H, W), labels (B), ids (B, dataset indices); *bsize 0 at the end of
 * the epoch. The pointers stay valid until the next call. */
int vt_loader_next(vt_loader *l, float **images, int **labels, const int64_t **ids, int *bsize);
/* seconds the caller spent waiting for batches since the last start */
double vt_loader_wait_seconds(const vt_loader *l);

/* split [0, count) into a training and a held-out part by fraction (deterministic in seed) */
int vt_split_indices(int64_t count, double val_fraction, uint64_t seed, int64_t **train, int64_t *ntrain,
                     int64_t **val, int64_t *nval);

#ifdef __cplusplus
}
#endif
#endif
