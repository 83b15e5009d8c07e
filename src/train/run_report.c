/* run_report.c - what vit-train prints while it runs: the banner (model, data, compute and the keys
 * this combination leaves unused), the progress lines and the evaluation lines. */
#include "trainer_internal.h"
#include <math.h>
#include <string.h>

static void banner_model(run_t *r)
{
    const vt_vit_config *mc = &r->model.cfg;
    char drop[192] = "";
    size_t dl = 0;
    const int npatch = r->model.grid_h * r->model.grid_w;
    if (mc->patch_drop_rate > 0)
        dl += (size_t)snprintf(drop + dl, sizeof drop - dl, ", patch dropout %g (trains on %d of %d tokens)",
                               mc->patch_drop_rate, vt_vit_patch_keep_count(mc, npatch), npatch);
    if (mc->drop_path_rate > 0)
        dl += (size_t)snprintf(drop + dl, sizeof drop - dl, ", stochastic depth %g (last block)",
                               vt_vit_drop_path_rate(mc, mc->depth - 1));
    if (mc->reg_tokens > 0) dl += (size_t)snprintf(drop + dl, sizeof drop - dl, ", %d register tokens", mc->reg_tokens);
    if (mc->init_values > 0)
        dl += (size_t)snprintf(drop + dl, sizeof drop - dl, ", LayerScale (init %g)", mc->init_values);
    char classes[32] = "";   /* a pretraining objective has no classification head */
    if (mc->pretrain.kind == VT_OBJ_CLASSIFY) snprintf(classes, sizeof classes, ", %d classes", mc->num_classes);
    fprintf(r->out, "vit %s | model: ViT %dx%d patch %d, dim %d, depth %d, heads %d, mlp %g, %s pooling%s%s, "
                    "%.3fM params%s\n", VIT_VERSION, mc->img_h, mc->img_w, mc->patch, mc->embed_dim, mc->depth,
            mc->num_heads, mc->mlp_ratio, vt_pool_name(mc->pool), mc->fc_norm ? " + fc_norm" : "", classes,
            vt_vit_num_params(&r->model) / 1e6, drop);
    const vt_pretrain_config *p = &mc->pretrain;
    const int M = vt_pretrain_masked_count(mc, npatch);
    if (p->kind == VT_OBJ_MAE)
        fprintf(r->out, "pretraining: mae, labels not read | the encoder sees %d of %d patches (mask_ratio %g), decoder dim %d, "
                        "depth %d, heads %d, loss on the %d hidden patches%s\n", npatch - M, npatch, p->mask_ratio,
                p->decoder_dim, p->decoder_depth, p->decoder_heads, M, p->norm_pix_loss ? " (norm_pix_loss)" : "");
    else if (p->kind != VT_OBJ_CLASSIFY)
        fprintf(r->out, "pretraining: %s, labels not read | %d of %d patches corrupted (mask_ratio %g: 80%% [mask], 10%% "
                        "another patch, 10%% kept), the head predicts %s\n", vt_objective_kind_name(p->kind), M, npatch,
                p->mask_ratio, p->kind == VT_OBJ_MASKED_COLOR ? "their mean colour" : "their pixels");
}

/* keys this combination does not use: said, so that a setting believed in is not silently without effect */
static void banner_unused(run_t *r)
{
    const vt_config *c = &r->cfg;
    if (c->val_fraction > 0 && r->test_ds)
        fprintf(r->out, "warning: [data] val_fraction = %g unused: %s has a test split, which evaluation uses\n",
                c->val_fraction, c->data_path);
    if (c->crop_padding > 0 && c->random_resized_crop)
        fprintf(r->out, "warning: [data] crop_padding = %d unused: random_resized_crop takes its place\n",
                c->crop_padding);
    if (c->decode_size > 0 && strcmp(r->train_ds->format, "folder") != 0)
        fprintf(r->out, "warning: [data] decode_size = %d unused: it applies to image folders, %s is %s\n",
                c->decode_size, c->data_path, r->train_ds->format);
}

void run_banner(run_t *r, bool dry_run)
{
    const vt_config *c = &r->cfg;
    FILE *out = r->out;
    banner_model(r);
    vt_dataset *ds = r->train_ds;
    fprintf(out, "data: %s (%s%s) %lld training images %dx%dx%d, %s %lld | batch %d x %d accumulated | %lld steps/epoch, %lld steps\n",
            ds->path, ds->format, ds->num_classes == 0 ? ", images without classes: labels not read" : "",
            (long long)vt_loader_size(r->train_l), ds->h, ds->w, ds->c,
            r->test_ds ? "test" : "validation", (long long)(r->eval_l ? vt_loader_size(r->eval_l) : 0), c->batch_size,
            c->accum_steps, (long long)r->steps_per_epoch, (long long)r->total_steps);
    char tf[96] = "", ld[96] = "";
    if (c->train_fraction < 1) snprintf(tf, sizeof tf, " [data] train_fraction = %g (a fixed subset, drawn from the seed)", c->train_fraction);
    if (c->layer_decay < 1) snprintf(ld, sizeof ld, " [optim] layer_decay = %g (block i at lr * decay^(depth + 1 - i))", c->layer_decay);
    if (tf[0] || ld[0]) fprintf(out, "recipe:%s%s\n", tf, ld);
    char reps[48] = "";
    if (r->rep.n > 1) snprintf(reps, sizeof reps, " (%d data-parallel replicas)", r->rep.n);
    fprintf(out, "compute: %d thread%s%s, OpenBLAS core %s | optimizer %s lr %g (%s schedule, warmup %lld) | out: %s\n",
            vt_get_threads(), vt_get_threads() == 1 ? "" : "s", reps, vt_blas_core(), c->optimizer, r->sched.base_lr,
            c->schedule, (long long)r->sched.warmup_steps, dry_run ? "(dry run)" : r->out_dir);
    recipe_banner(r);
    if (r->d->size > 1) {
        const int64_t bytes = (int64_t)sizeof(float) * r->model.params.numel * c->accum_steps;
        fprintf(out, "data parallel: %d ranks on %d host%s, %d thread%s and %d replica%s per rank (each batch in %d parts) | "
                     "%.2f MB of gradients summed per step (%d bucket%s, %s)\n",
                r->d->size, r->d->nhosts, r->d->nhosts == 1 ? "" : "s", vt_get_threads(), vt_get_threads() == 1 ? "" : "s",
                r->rep.n, r->rep.n == 1 ? "" : "s", r->rep.parts, bytes / 1e6, r->gsum.sum.nb, r->gsum.sum.nb == 1 ? "" : "s",
                r->rep.n == 1 ? "started while backward runs" : "after the replicas' sum");
        if (r->sharded)
            fprintf(out, "optimizer state sharded (ZeRO-1): this rank keeps the moments of %lld of %lld parameters "
                         "(%.1f MB)\n", (long long)r->opt.n, (long long)r->model.params.numel,
                    (r->opt.v ? 8.0 : 4.0) * (double)r->opt.n / 1e6);
    }
    banner_unused(r);
    vt_data_warn_skipped(out, "", r->train_ds, "training data");
    vt_data_warn_skipped(out, "", r->test_ds, "test data");
    fflush(out);
}

/* avg: the mean since the previous line (timm's is the mean since the epoch began) */
void run_progress(run_t *r, double loss, double avg, double lr, double gnorm, double ips, double eta)
{
    const long long e = (long long)r->st.epoch + 1, step = (long long)r->st.step, total = (long long)r->total_steps;
    if (r->tty) {
        fprintf(r->out,
                "\r\033[Kepoch %lld  step %lld/%lld  loss %.4f (avg %.4f)  lr %.3e  grad %.3f  %.0f img/s  ETA %02d:%02d:%02d",
                e, step, total, loss, avg, lr, gnorm, ips, (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    } else {
        fprintf(r->out, "epoch %lld step %lld/%lld loss %.4f (avg %.4f) lr %.3e grad_norm %.3f img/s %.0f eta %.0fs\n",
                e, step, total, loss, avg, lr, gnorm, ips, eta);
    }
    fflush(r->out);
}

void run_print_eval(run_t *r, const vt_eval_result *ev)
{
    if (r->tty) fputc('\n', r->out);
    char m[256];
    vt_eval_format(ev, false, m, sizeof m);
    fprintf(r->out, "eval after step %lld: %s  (%lld images)\n", (long long)r->st.step, m, (long long)ev->count);
}

void run_print_eval_ema(run_t *r, const vt_eval_result *ev)
{
    char m[256];
    vt_eval_format(ev, false, m, sizeof m);
    fprintf(r->out, "eval of the EMA after step %lld: %s\n", (long long)r->st.step, m);
}
