/* data.h - datasets behind one interface, per-sample transforms, and a prefetching batch loader.
 *
 * A dataset delivers sample i as uint8 pixels, interleaved (h, w, c) row-major (the layout of
 * every file format read here), plus an int label in [0, num_classes). Every sample of a dataset
 * has the same (h, w, c). The transforms turn that into the model's float32 planar (C, H, W).
 *
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
    const char *format;     /* its name in VT_DATA_FORMATS: "idx", "cifar", "hdf5", "folder" */
    int64_t count;          /* samples */
    int num_classes;
    int h, w, c;            /* delivered image shape; pixels are uint8 (h, w, c) */
    /* read sample i (0 <= i < count): pixels (h*w*c bytes) and label; thread-safe */
    int (*read)(vt_dataset *ds, int64_t i, uint8_t *pixels, int *label);
    void (*close)(vt_dataset *ds);
    void *impl;
    char **class_names;     /* num_classes names, or NULL where the files do not say */
    int64_t skipped;        /* undecodable images left out or replaced (bad_images = skip) */
    char skip_note[512];    /* the first of them and why ("" when none) */
};

/* The dataset formats, in the order detection tries them: X(name, detect, open, what). detect(path, st)
 * says whether path (st: its stat) holds that format; open is the format's opener (data_internal.h);
 * what is the detection message's description of it (NULL: not named there). This list is the registry:
 * vt_dataset_open_opts, [data] format's choices and vit-data's --format all come from it. A new format is
 * one line here and its detect and open functions (data_internal.h, its own file). */
#define VT_DATA_FORMATS(X)                                                                                  \
    X("idx", vt_idx_detect, vt_idx_open_path, "IDX files (train-images-idx3-ubyte[.gz])")                   \
    X("cifar", vt_cifar_detect, vt_cifar_open, "CIFAR batches (data_batch_1.bin or train.bin)")             \
    X("hdf5", vt_h5data_detect, vt_h5data_open, NULL)                                                       \
    X("folder", vt_folder_detect_path, vt_folder_open, "image folders (class folders of .jpg/.png, or the images alone for pretraining)")
/* the names as "auto|idx|cifar|hdf5|folder" (a config key's choices), or as array items "idx", "cifar", ... */
#define VT_DATA_FORMAT_BAR(name, detect, open, what) "|" name
#define VT_DATA_FORMAT_CHOICES "auto" VT_DATA_FORMATS(VT_DATA_FORMAT_BAR)
#define VT_DATA_FORMAT_NAME(name, detect, open, what) name,

/* What to do with an image file that cannot be decoded (image folders) */
typedef enum { VT_BAD_REFUSE = 0, VT_BAD_SKIP = 1 } vt_bad_policy;

typedef struct {
    const char *format;       /* "auto" or NULL (detect from the path), or a name of VT_DATA_FORMATS */
    const char *images_key;   /* HDF5 dataset names (NULL: "images", "labels") */
    const char *labels_key;
    int num_classes;          /* > 0: a label >= this refuses the file; 0: the data decides */
    bool cifar_coarse;        /* CIFAR-100: the 20 coarse labels instead of the 100 fine ones */
    /* image folders */
    vt_bad_policy bad_images; /* refuse (error naming the file) or skip (counted in ds->skipped) */
    int image_h, image_w;     /* delivered size (0: the images' own size when they all agree, else auto_h x auto_w) */
    int auto_h, auto_w;       /* the size when image_h/w are 0 and the images' sizes disagree, or all exceed
                                 it on both sides (0: 256 for disagreeing sizes, never for agreeing ones) */
    bool unlabelled;          /* labels not read (pretraining): a folder with images directly in it (or in its
                                 train/) is read without classes, every image in it and its subfolders, label 0,
                                 num_classes 0; else such a folder without class folders is refused */
    int channels;             /* 1 or 3 (0: 1 when every image is grayscale, else 3) */
    int64_t max_image_pixels; /* an image whose header claims more pixels is refused (or skipped) before any
                                 decode (0: VT_IMAGE_DEFAULT_PIXELS; at most 2^28) */
} vt_data_options;

/* the default image pixel cap, Pillow's MAX_IMAGE_PIXELS (its decompression-bomb guard): a small file may
 * claim a huge image (a 746 KB PNG of 16000 x 16000 decoded to 768 MB, and gigabytes on the way to a small
 * model size); a larger one is refused naming [data] max_image_pixels, which a user may raise */
#define VT_IMAGE_DEFAULT_PIXELS 89478485LL

/* Open split "train" or "test" of the dataset at path: a folder of IDX files found by their
 * standard names (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...), a CIFAR
 * folder (data_batch_1..5.bin + test_batch.bin, or CIFAR-100 train.bin + test.bin), an HDF5 file
 * (images uint8 (N, H, W, C) or (N, H, W) and labels integer (N,), under /train and /test or at the
 * root for a train-only file), or an image-folder root (root/<class>/<file>.jpg|.jpeg|.png, or
 * root/train/<class>/... with root/val/ or root/test/ for the test split).
 * *out is NULL and vt_errmsg() names the file on failure. A missing test split is not an error:
 * *out is NULL and the return is VT_OK. o may be NULL (all defaults). */
int vt_dataset_open_opts(vt_dataset **out, const char *path, const char *split, const vt_data_options *o);
/* the same with default options except these */
int vt_dataset_open(vt_dataset **out, const char *path, const char *split, const char *format,
                    const char *images_key, const char *labels_key);
void vt_dataset_close(vt_dataset *ds);

/* Write every sample of ds under group (e.g. "/train") of an open HDF5 file: images uint8
 * (N, H, W, C) in deflated chunks of about 64 KiB, written a block at a time (never the whole
 * dataset in memory); labels int64 (N,) with attributes num_classes and class_names (one per line).
 * Every write is checked and the group flushed to the file: a full disk is an error naming the file
 * and the OS's reason ("No space left on device"). */
int vt_dataset_pack_h5(vt_dataset *ds, vt_h5id file, const char *group);

/* A packed file written so that a failure never leaves a partial file under its name nor harms an
 * existing one: begin creates <path>.partial beside path, refusing (p->refused set) a path that is a
 * folder, or an existing file other than a packed dataset (a data file of the source folder src, which
 * may be NULL, is named as such); pack
 * into p->file; commit flushes and closes it, checking each step, syncs it to the disk and renames it
 * over path; abort (after any failure) closes and removes it, keeping vt_errmsg(). A failed commit
 * has removed it too. Messages name the file and give the OS's reason ("No space left on device"). */
typedef struct {
    vt_h5id file;
    char path[4096], tmp[4200];
    bool refused;   /* begin refused path as the output (not a failure to write) */
} vt_pack_file;
int vt_pack_file_begin(vt_pack_file *p, const char *path, const char *src);
int vt_pack_file_commit(vt_pack_file *p);
void vt_pack_file_abort(vt_pack_file *p);

/* one PNG or JPEG file (recognised by its first bytes, not its name) as uint8 (h, w, channels), channels 1
 * or 3 (gray replicated, RGB to luma, alpha dropped); *pix is malloc'd */
int vt_image_file_read(const char *path, int channels, uint8_t **pix, int *h, int *w);

/* ---------------------------------------------------------------- RandAugment / TrivialAugment (randaug.c)
 * On the uint8 image, planar (C, H, W), after the crop and flip and before normalisation (timm's order).
 * The ops are PIL's as timm calls them (bilinear resampling for the geometric ones, fill colour the mean). */
typedef enum {
    VT_AUG_AUTOCONTRAST, VT_AUG_EQUALIZE, VT_AUG_INVERT, VT_AUG_ROTATE, VT_AUG_POSTERIZE, VT_AUG_SOLARIZE,
    VT_AUG_SOLARIZE_ADD, VT_AUG_COLOR, VT_AUG_CONTRAST, VT_AUG_BRIGHTNESS, VT_AUG_SHARPNESS, VT_AUG_SHEAR_X,
    VT_AUG_SHEAR_Y, VT_AUG_TRANSLATE_X, VT_AUG_TRANSLATE_Y, VT_AUG_IDENTITY, VT_AUG_NOPS
} vt_aug_op;
enum { VT_RANDAUG_OFF = 0, VT_RANDAUG_RAND = 1, VT_RANDAUG_TRIVIAL = 2 };
typedef struct {
    int kind;                /* VT_RANDAUG_OFF, _RAND (timm's rand-...), _TRIVIAL (TrivialAugmentWide) */
    int n;                   /* ops per image (timm's n, 2) */
    double m, mstd, mmax;    /* magnitude (of 10), its normal noise (inf: uniform in [0, m]), its cap (0: 10) */
    double prob;             /* each chosen op applied with this probability (timm: 0.5) */
    bool increasing;         /* timm's inc1: the ...Increasing variants */
    uint8_t fill[4];         /* geometric ops' fill, per channel (timm: round(255 mean)); TrivialAugment: 0 */
} vt_randaug;
/* timm's notation "rand-m9-n2-mstd0.5-inc1" ("rand-" optional; m, n, mstd, mmax, inc, p), "ta", or "" (off) */
int vt_randaug_parse(const char *text, vt_randaug *ra);
/* img (C, H, W) augmented in place; tmp: C*H*W bytes */
void vt_randaug_apply(const vt_randaug *ra, uint8_t *img, int C, int H, int W, vt_rng *r, uint8_t *tmp);
/* one op with its argument (degrees; shear factor; pixels, PIL's sign: +x shifts the image left; bits kept;
 * threshold; amount added; enhancement factor), fill per channel; tmp: C*H*W bytes */
void vt_aug_apply_op(vt_aug_op op, double arg, uint8_t *img, int C, int H, int W, const uint8_t *fill, uint8_t *tmp);
/* timm's level -> argument of op for magnitude m (0..10); draws the random sign from r */
double vt_randaug_arg(vt_aug_op op, double m, bool increasing, int H, int W, vt_rng *r);
const char *vt_aug_op_name(vt_aug_op op);
/* the ops ra chooses from for C channels (timm's _RAND_TRANSFORMS or TrivialAugmentWide's; Color only for 3) */
int vt_randaug_ops(const vt_randaug *ra, int C, vt_aug_op *ops);

/* ---------------------------------------------------------------- transforms */
/* what random erasing writes (timm's modes): a normal(0, 1) value per pixel, one per channel, or zero */
typedef enum { VT_ERASE_PIXEL = 0, VT_ERASE_RAND = 1, VT_ERASE_CONST = 2 } vt_erase_mode;
typedef struct {
    int out_c, out_h, out_w;      /* what the model takes */
    float mean[4], std[4];        /* per output channel, on [0, 1] pixel values */
    bool train;                   /* augment (else: deterministic resize / center crop) */
    bool hflip;
    int crop_padding;             /* random crop after zero padding (train) */
    bool rrc;                     /* random-resized-crop (train) */
    double rrc_scale_min, rrc_ratio_min, rrc_ratio_max;
    float crop_pct;               /* evaluation (and training without rrc): resize the shorter side to
                                     out/crop_pct and center-crop; 0 = resize the whole image to (H, W) */
    float erase_prob;             /* random erasing (train, after normalisation; timm's RandomErasing):
                                     a rectangle of 2%..1/3 of the area, aspect 0.3..3.3, with this probability */
    vt_erase_mode erase_mode;
    vt_randaug randaug;           /* train: RandAugment / TrivialAugment on the uint8 image (kind 0: off) */
} vt_transform;

/* parse "0.5" or "0.5, 0.4, 0.3" into n values (one value is repeated) */
int vt_parse_floats(const char *text, float *out, int n, const char *what);
/* floats of scratch memory vt_transform_apply needs for a stored (h, w) image (from an allocation's
 * start, or any 8-byte-aligned address) */
size_t vt_transform_scratch(const vt_transform *t, int h, int w);
/* pix uint8 (h, w, c) -> out float (out_c, out_h, out_w); rng drives the augmentation.
 * Channels: gray is replicated to RGB, RGB becomes gray by ITU-R 601 luma, extra channels dropped.
 * Allocates nothing; VT_ERR (vt_errmsg says why) only when scratch is misaligned. */
int vt_transform_apply(const vt_transform *t, const uint8_t *pix, int h, int w, int c, float *out, vt_rng *rng,
                       float *scratch);
/* the RNG of sample i in epoch e of a run with this seed (a hash of the three) */
void vt_sample_rng(vt_rng *r, uint64_t seed, int64_t epoch, int64_t index);

/* ---------------------------------------------------------------- mixup and cutmix (mix.c)
 * timm's Mixup in batch mode: with probability prob a batch is mixed with its flip (sample b with B-1-b),
 * by cutmix with probability switch_prob when both alphas are set (else the one set); lambda ~
 * Beta(alpha, alpha); cutmix pastes timm's rand_bbox box and corrects lambda to the clipped box's area.
 * The soft targets are timm's mixup_target: one_hot(y) * lam + one_hot(y.flip(0)) * (1 - lam) with
 * on/off values 1 - s + s/K and s/K (s: the label smoothing; lam = 1 when the batch is not mixed). */
typedef struct {
    double mixup_alpha, cutmix_alpha;   /* 0: off */
    double prob, switch_prob;           /* timm's mix_prob (1.0) and switch_prob (0.5) */
} vt_mix;
typedef struct {
    double lam;                         /* weight of the batch's own images (1: unmixed) */
    bool cutmix;                        /* else mixup (when lam < 1) */
    int y0, y1, x0, x1;                 /* cutmix: rows [y0, y1), columns [x0, x1) come from the flip */
} vt_mix_params;
bool vt_mix_enabled(const vt_mix *m);
/* one batch's draw (timm's _params_per_batch, then rand_bbox for cutmix) for images H x W */
void vt_mix_draw(const vt_mix *m, vt_rng *r, int H, int W, vt_mix_params *p);
/* timm's rand_bbox around the centre (cy, cx) for lambda lam, and the lambda of its clipped area */
void vt_cutmix_box(int H, int W, double lam, int cy, int cx, vt_mix_params *p);
/* x (B, C, H, W) mixed in place as p says, targets (B, K) written; labels in [0, K) */
int vt_mix_apply(const vt_mix_params *p, float *x, const int *labels, int B, int C, int H, int W, int K, double smoothing,
                 float *targets);
/* the targets alone (timm's mixup_target) */
void vt_mix_targets(const int *labels, int B, int K, double smoothing, double lam, float *targets);
/* Beta(a, b) from two Gamma draws */
double vt_beta_draw(vt_rng *r, double a, double b);

/* ---------------------------------------------------------------- loader */
typedef struct vt_loader vt_loader;
typedef struct {
    vt_dataset *ds;
    const int64_t *indices;       /* subset of the dataset (NULL: all); copied */
    int64_t n;                    /* samples in the subset (ignored when indices is NULL) */
    vt_transform tf;
    int batch;
    bool shuffle, drop_last;      /* training: both; evaluation: neither (last batch has its real size) */
    uint64_t seed;
    int workers;                  /* 0: fill batches in the caller's thread */
    int prefetch;                 /* ring slots (at least 2) */
    /* a data-parallel rank's share: of every batch only the images of parts [share_first, share_first +
     * share_count) of share_parts (vt_batch_share); share_parts 0: the whole batch */
    int share_first, share_count, share_parts;
    int repeats;                  /* DeiT's RASampler (0 or 1: off): the epoch's order with each sample repeated this
                                     many times in a row, cut to floor(n / 256) * 256 samples (n when n < 256); repeat
                                     k > 0 of sample i draws its augmentation from another stream than repeat 0 */
} vt_loader_config;

int vt_loader_create(vt_loader **out, const vt_loader_config *c);
void vt_loader_free(vt_loader *l);
/* batches per epoch */
int64_t vt_loader_batches(const vt_loader *l);
/* samples per epoch (the subset's size, or with repeats the RASampler's count) */
int64_t vt_loader_epoch_samples(const vt_loader *l);
/* the RNG of repeat k of sample i in epoch e: vt_sample_rng's for k = 0, another stream for each k > 0 */
void vt_sample_rng_repeat(vt_rng *r, uint64_t seed, int64_t epoch, int64_t index, int k);
int64_t vt_loader_size(const vt_loader *l);
/* position the loader at batch k of epoch e (restarts the workers) */
int vt_loader_start(vt_loader *l, int64_t epoch, int64_t batch);
/* the next batch: images (B, C, H, W), labels (B), ids (B, dataset indices; may be NULL); *bsize 0
 * at the end of the epoch. The pointers stay valid until the next call. */
int vt_loader_next(vt_loader *l, float **images, int **labels, const int64_t **ids, int *bsize);
/* the whole size of the batch vt_loader_next last returned, of which *bsize is this loader's share (it
 * may hold none of a short last batch); 0 at the end of the epoch */
int vt_loader_full_size(const vt_loader *l);
/* seconds the caller spent waiting for batches since the last start */
double vt_loader_wait_seconds(const vt_loader *l);

/* write pix (h, w, c) 8-bit, c 1 (gray) or 3 (RGB), as a PNG file */
int vt_png_write(const char *path, const uint8_t *pix, int h, int w, int c);

/* split [0, count) into a training and a held-out part by fraction (deterministic in seed);
 * both lists are malloc'd (free them), in increasing index order */
int vt_split_indices(int64_t count, double val_fraction, uint64_t seed, int64_t **train, int64_t *ntrain,
                     int64_t **val, int64_t *nval);

#ifdef __cplusplus
}
#endif
#endif
