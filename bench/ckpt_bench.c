/* ckpt_bench.c - what a checkpoint's Fletcher-32 checksums cost, and where the cost is: the same tensors
 * (a model's parameters, one dataset each, and two flat AdamW moments) written with HDF5 in several layouts,
 * round-robin in one run so that the machine's load falls on all alike, to a file on disk (closed and
 * fsynced, as vt_ckpt_write) and to an in-memory file (HDF5's core driver: the CPU part alone), plus the
 * Fletcher-32 sum by itself (HDF5's algorithm, byte-wise 16-bit words) and vt_ckpt_write as built.
 *
 *   vit-ckpt-bench [--model ti16] [--reps 9] [--dir /tmp]      best and median ms of each
 *
 * Measured 2026-12-02 17:05 UTC on the project's machine (2 cores, load average 7-8: other helpers' tests and
 * fuzzers; ext4 on a virtio disk), ViT-Ti with AdamW, 68.6 MB, best of 21 rounds: contiguous without
 * checksums 70 ms; 64 KiB chunks 98 ms without the filter, 116 with Fletcher-32; 1 MiB chunks 81 without,
 * 100 with; 4 MiB 114, one chunk per tensor 150 (a chunk above HDF5's 1 MiB chunk cache is copied whole
 * into a new buffer by the filter); the sum alone 26 ms (2.6 GB/s: HDF5 adds the 16-bit words one at a
 * time, each sum depending on the last). So the chunking costs 11-27 ms and the checksum ~19 ms whatever
 * the layout: about a quarter of a page-cache write of the same bytes, never under 2% of it. vt_ckpt_write
 * with 1 MiB chunks (h5write.c since then) against 64 KiB, two builds alternately in the same minutes:
 * best 92.6 and 85.6 ms against 102.9 and 92.4. */
#include "train/train.h"
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    size_t chunk;    /* target chunk bytes along the first dimension; 0: contiguous; SIZE_MAX: one chunk per tensor */
    bool fletcher;
    bool core;       /* in memory (no disk, no fsync) */
    bool nocache;    /* the dataset's chunk cache off (each chunk goes through the filter straight to the file) */
} layout;

typedef struct {
    const char *name;
    const float *data;
    int ndim;
    hsize_t dims[8];
} tensor;

static double now(void) { return vt_now(); }

/* HDF5's Fletcher-32 (H5_checksum_fletcher32): 16-bit big-endian words, sums folded every 360 words */
static uint32_t fletcher32(const uint8_t *data, size_t bytes)
{
    size_t len = bytes / 2;
    uint32_t s1 = 0, s2 = 0;
    while (len) {
        size_t t = len > 360 ? 360 : len;
        len -= t;
        do {
            s1 += (uint32_t)(((uint16_t)data[0]) << 8 | data[1]);
            data += 2;
            s2 += s1;
        } while (--t);
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if (bytes & 1) {
        s1 += (uint32_t)((uint16_t)*data << 8);
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    return s2 << 16 | s1;
}

static int write_layout(const layout *L, const char *path, const tensor *t, int nt, int64_t *nchunks)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (L->core) H5Pset_fapl_core(fapl, 64 << 20, 0);   /* no backing store */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return -1;
    hid_t g = H5Gcreate2(f, "/t", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    *nchunks = 0;
    for (int i = 0; i < nt; i++) {
        hid_t s = H5Screate_simple(t[i].ndim, t[i].dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
        if (L->chunk) {
            hsize_t ch[8], row = 4;
            for (int k = 1; k < t[i].ndim; k++) row *= t[i].dims[k];
            for (int k = 0; k < t[i].ndim; k++) ch[k] = t[i].dims[k];
            hsize_t rows = L->chunk == SIZE_MAX ? t[i].dims[0] : (L->chunk + row - 1) / row;
            ch[0] = rows < 1 ? 1 : rows > t[i].dims[0] ? t[i].dims[0] : rows;
            *nchunks += (int64_t)((t[i].dims[0] + ch[0] - 1) / ch[0]);
            H5Pset_chunk(pl, t[i].ndim, ch);
            if (L->fletcher) H5Pset_fletcher32(pl);
        }
        char name[128];
        snprintf(name, sizeof name, "%d", i);
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        if (L->nocache) H5Pset_chunk_cache(dapl, 0, 0, 1.0);
        hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, pl, dapl);
        H5Pclose(dapl);
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t[i].data) < 0) return -1;
        H5Dclose(d);
        H5Pclose(pl);
        H5Sclose(s);
    }
    H5Gclose(g);
    if (H5Fclose(f) < 0) return -1;
    if (!L->core) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) return -1;
        close(fd);
        unlink(path);
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *model = "ti16", *dir = "/tmp";
    int reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else {
            fprintf(stderr, "usage: vit-ckpt-bench [--model ti16] [--reps N] [--dir DIR]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 1000) reps = 9;
    vt_h5_quiet();
    vt_vit_config mc;
    vt_vit m;
    vt_optim o;
    vt_optim_config oc;
    vt_optim_config_defaults(&oc);
    vt_vit_config_defaults(&mc);   /* 224x224, 3 channels, 1000 classes */
    if (vt_vit_preset(&mc, model) != VT_OK || vt_vit_init(&m, &mc) != VT_OK ||
        vt_optim_init(&o, &oc, m.params.numel) != VT_OK) {
        fprintf(stderr, "vit-ckpt-bench: %s\n", vt_errmsg());
        return 1;
    }
    vt_rng r;
    vt_rng_seed(&r, 1);
    vt_vit_init_weights(&m, &r);
    for (int64_t k = 0; k < o.n; k++) o.m[k] = m.params.data[k] * 0.1f, o.v[k] = m.params.data[k] * m.params.data[k];
    int nt = m.params.count + 2;
    tensor *t = calloc((size_t)nt, sizeof *t);
    for (int i = 0; i < m.params.count; i++) {
        const vt_param_info *pi = &m.params.info[i];
        t[i].name = pi->name, t[i].data = m.params.data + pi->offset, t[i].ndim = pi->ndim;
        for (int k = 0; k < pi->ndim; k++) t[i].dims[k] = (hsize_t)pi->shape[k];
    }
    t[nt - 2] = (tensor){"exp_avg", o.m, 1, {(hsize_t)o.n}};
    t[nt - 1] = (tensor){"exp_avg_sq", o.v, 1, {(hsize_t)o.n}};
    const double mb = 3 * 4.0 * (double)m.params.numel / 1e6;
    const layout L[] = {
        {"disk contiguous, no checksum (before)", 0, false, false, false},
        {"disk 64 KiB chunks, no checksum", 65536, false, false, false},
        {"disk 64 KiB chunks + Fletcher-32 (now)", 65536, true, false, false},
        {"disk 64 KiB chunks + F32, no chunk cache", 65536, true, false, true},
        {"disk 256 KiB chunks + Fletcher-32", 256 << 10, true, false, false},
        {"disk 1 MiB chunks, no checksum", 1 << 20, false, false, false},
        {"disk 1 MiB chunks + Fletcher-32", 1 << 20, true, false, false},
        {"disk 4 MiB chunks + Fletcher-32", 4 << 20, true, false, false},
        {"disk one chunk per tensor + Fletcher-32", SIZE_MAX, true, false, false},
        {"memory contiguous, no checksum", 0, false, true, false},
        {"memory 64 KiB chunks, no checksum", 65536, false, true, false},
        {"memory 64 KiB chunks + Fletcher-32", 65536, true, true, false},
        {"memory 1 MiB chunks + Fletcher-32", 1 << 20, true, true, false},
    };
    enum { NL = sizeof L / sizeof *L };
    double *ms = calloc((size_t)(NL + 2) * (size_t)reps, sizeof *ms);
    int64_t chunks[NL];
    char path[4200], ckdir[4200];
    snprintf(path, sizeof path, "%s/vit-ckpt-bench-%d.h5", dir, (int)getpid());
    snprintf(ckdir, sizeof ckdir, "%s/vit-ckpt-bench-%d", dir, (int)getpid());
    mkdir(ckdir, 0777);
    vt_train_state st = {0};
    volatile uint32_t sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        for (int l = 0; l < NL; l++) {
            double t0 = now();
            if (write_layout(&L[l], path, t, nt, &chunks[l]) != 0) {
                fprintf(stderr, "vit-ckpt-bench: writing %s (%s) failed\n", path, L[l].name);
                return 1;
            }
            ms[l * reps + rep] = 1e3 * (now() - t0);
        }
        double t0 = now();   /* the sum alone, over the same bytes */
        for (int i = 0; i < nt; i++) {
            size_t bytes = 4;
            for (int k = 0; k < t[i].ndim; k++) bytes *= t[i].dims[k];
            sink ^= fletcher32((const uint8_t *)t[i].data, bytes);
        }
        ms[NL * reps + rep] = 1e3 * (now() - t0);
        char ck[4200];
        t0 = now();
        if (vt_ckpt_write(ckdir, &m, &o, &st, "", 0, ck, sizeof ck) != VT_OK) {
            fprintf(stderr, "vit-ckpt-bench: %s\n", vt_errmsg());
            return 1;
        }
        ms[(NL + 1) * reps + rep] = 1e3 * (now() - t0);
        unlink(ck);
    }
    rmdir(ckdir);
    double la[3] = {0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = -1;
        fclose(lf);
    }
    printf("%s: %lld parameters, %d tensors + 2 AdamW moments, %.1f MB; %d rounds; load average %.2f %.2f %.2f\n",
           model, (long long)m.params.numel, m.params.count, mb, reps, la[0], la[1], la[2]);
    printf("%-46s %8s %9s %9s %8s\n", "layout", "chunks", "best ms", "median ms", "GB/s");
    for (int l = 0; l < NL + 2; l++) {
        double *v = ms + l * reps;
        qsort(v, (size_t)reps, sizeof *v, cmp_d);
        const char *name = l < NL ? L[l].name : l == NL ? "Fletcher-32 sum alone (HDF5's algorithm)" : "vt_ckpt_write (as built, deflate 0)";
        char nch[32] = "";
        if (l < NL) snprintf(nch, sizeof nch, "%lld", (long long)(L[l].chunk ? chunks[l] : 0));
        printf("%-46s %8s %9.2f %9.2f %8.2f\n", name, nch, v[0], v[reps / 2], mb / v[0]);
    }
    (void)sink;
    free(ms);
    free(t);
    vt_optim_free(&o);
    vt_vit_free(&m);
    return 0;
}
