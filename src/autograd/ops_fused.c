/* ops_fused.c - the coarse ops of the ViT fast path: linear, layernorm, gelu, attention, softmax,
 * cross-entropy, patch extraction, class token + position embedding, pooling, token selection, the
 * scaled residual add (LayerScale, stochastic depth).
 * Each forward checks shapes, runs the tensor kernel and records what backward needs. */
#include "autograd_internal.h"
#include <math.h>
#include <string.h>

#define LAST(v) ((v)->val.shape[(v)->val.ndim - 1])
#define NUMEL(v) vt_tensor_numel(&(v)->val)

/* x (..., C), w (OC, C), b (OC) -> (..., OC) */
vt_var *vt_linear(vt_graph *g, vt_var *x, vt_var *w, vt_var *b)
{
    vt_var *ins[3] = {x, w, b};
    if (!ag_check_inputs("linear", ins, 2)) return NULL;
    int64_t C = LAST(x);
    if (w->val.ndim != 2 || w->val.shape[1] != C) {
        vt_err("linear: weight %s has shape %s, expected (out, %lld) for input %s", w->val.name ? w->val.name : "",
               ag_shape(w), (long long)C, ag_shape(x));
        return NULL;
    }
    int64_t OC = w->val.shape[0];
    if (b && (NUMEL(b) != OC)) {
        vt_err("linear: bias %s has shape %s, expected (%lld)", b->val.name ? b->val.name : "", ag_shape(b), (long long)OC);
        return NULL;
    }
    int64_t shape[VT_MAXDIM];
    memcpy(shape, x->val.shape, sizeof shape);
    shape[x->val.ndim - 1] = OC;
    vt_var *o = ag_out(g, x->val.ndim, shape, "linear", ins, 3);
    if (!o) return NULL;
    int64_t R = ag_rows(x);
    vt_linear_forward(o->val.data, x->val.data, w->val.data, b ? b->val.data : NULL, (int)R, (int)C, (int)OC);
    vt_node *n = ag_record(g, VT_OP_LINEAR, o, ins, 3);
    if (n) {
        n->ctx.linear.R = (int)R;
        n->ctx.linear.C = (int)C;
        n->ctx.linear.OC = (int)OC;
    }
    return o;
}

int ag_backward_linear(vt_graph *g, vt_node *n)
{
    vt_var *x = n->in[0], *w = n->in[1], *b = n->in[2];
    bool acc;
    float *dx = ag_grad_dst(g, x, &acc);
    if (x->requires_grad && !dx) return VT_ERR;
    vt_linear_backward(dx, ag_grad_of(g, w), ag_grad_of(g, b), n->out->grad, x->val.data, w->val.data,
                       n->ctx.linear.R, n->ctx.linear.C, n->ctx.linear.OC, acc);
    return VT_OK;
}

/* x (..., C), w (C), b (C) -> (..., C); cache mean, rstd (rows) */
vt_var *vt_layernorm(vt_graph *g, vt_var *x, vt_var *w, vt_var *b, float eps)
{
    vt_var *ins[3] = {x, w, b};
    if (!ag_check_inputs("layernorm", ins, 3)) return NULL;
    int64_t C = LAST(x), R = ag_rows(x);
    if (NUMEL(w) != C || NUMEL(b) != C) {
        vt_err("layernorm: weight %s / bias %s, expected (%lld) for input %s", ag_shape(w), ag_shape(b),
               (long long)C, ag_shape(x));
        return NULL;
    }
    vt_var *o = ag_out(g, x->val.ndim, x->val.shape, "layernorm", ins, 3);
    if (!o) return NULL;
    bool rec = g->grad_enabled && o->requires_grad;
    float *mean = rec ? ag_alloc(g, R, false) : NULL, *rstd = rec ? ag_alloc(g, R, false) : NULL;
    if (rec && (!mean || !rstd)) return NULL;
    vt_layernorm_forward(o->val.data, mean, rstd, x->val.data, w->val.data, b->val.data, (int)R, (int)C, eps);
    vt_node *n = ag_record(g, VT_OP_LAYERNORM, o, ins, 3);
    if (n) {
        n->ctx.layernorm.mean = mean;
        n->ctx.layernorm.rstd = rstd;
        n->ctx.layernorm.R = (int)R;
        n->ctx.layernorm.C = (int)C;
    }
    return o;
}

int ag_backward_layernorm(vt_graph *g, vt_node *n)
{
    vt_var *x = n->in[0], *w = n->in[1], *b = n->in[2];
    bool acc;
    float *dx = ag_grad_dst(g, x, &acc);
    if (x->requires_grad && !dx) return VT_ERR;
    vt_layernorm_backward(dx, ag_grad_of(g, w), ag_grad_of(g, b), n->out->grad, x->val.data, w->val.data,
                          n->ctx.layernorm.mean, n->ctx.layernorm.rstd, n->ctx.layernorm.R, n->ctx.layernorm.C, acc);
    return VT_OK;
}

static vt_var *gelu_op(vt_graph *g, vt_var *x, vt_gelu_kind kind, bool consume)
{
    vt_var *ins[1] = {x};
    if (!ag_check_inputs("gelu", ins, 1)) return NULL;
    vt_var *o = ag_out(g, x->val.ndim, x->val.shape, "gelu", ins, 1);
    if (!o) return NULL;
    /* consuming: x's storage receives GELU'(x), backward is one multiply */
    bool deriv = consume && g->grad_enabled && x->requires_grad;
    if (deriv) vt_gelu_forward_deriv(o->val.data, x->val.data, x->val.data, NUMEL(x), kind);
    else vt_gelu_forward(o->val.data, x->val.data, NUMEL(x), kind);
    vt_node *n = ag_record(g, VT_OP_GELU, o, ins, 1);
    if (n) {
        n->ctx.gelu.kind = kind;
        n->ctx.gelu.deriv = deriv;
    }
    return o;
}

vt_var *vt_gelu(vt_graph *g, vt_var *x, vt_gelu_kind kind) { return gelu_op(g, x, kind, false); }

vt_var *vt_gelu_consume(vt_graph *g, vt_var *x, vt_gelu_kind kind) { return gelu_op(g, x, kind, true); }

int ag_backward_gelu(vt_graph *g, vt_node *n)
{
    vt_var *x = n->in[0];
    bool acc;
    float *dx = ag_grad_dst(g, x, &acc);
    if (x->requires_grad && !dx) return VT_ERR;
    if (dx && n->ctx.gelu.deriv) vt_gelu_backward_deriv(dx, n->out->grad, x->val.data, NUMEL(x), acc);
    else if (dx) vt_gelu_backward(dx, n->out->grad, x->val.data, NUMEL(x), n->ctx.gelu.kind, acc);
    return VT_OK;
}

/* qkv (B, T, 3C) -> (B, T, C); cache att (B, NH, T, T) */
vt_var *vt_attention(vt_graph *g, vt_var *qkv, int NH)
{
    vt_var *ins[1] = {qkv};
    if (!ag_check_inputs("attention", ins, 1)) return NULL;
    if (qkv->val.ndim != 3 || qkv->val.shape[2] % 3 != 0 || NH < 1 || (qkv->val.shape[2] / 3) % NH != 0) {
        vt_err("attention: qkv %s must be (B, T, 3C) with C divisible by %d heads", ag_shape(qkv), NH);
        return NULL;
    }
    int64_t B = qkv->val.shape[0], T = qkv->val.shape[1], C = qkv->val.shape[2] / 3;
    vt_var *o = ag_out(g, 3, (int64_t[]){B, T, C}, "attention", ins, 1);
    if (!o) return NULL;
    /* backward needs the probabilities, or (recompute) the row statistics; evaluation needs neither */
    bool keep = g->grad_enabled && o->requires_grad;
    float *att = NULL, *stats = NULL, *scratch = NULL;
    if (keep && !g->recompute_attention) {
        if (!(att = ag_alloc(g, B * NH * T * T, false))) return NULL;
    } else if (keep && !(stats = ag_alloc(g, B * NH * T * 2, false))) {
        return NULL;
    }
    /* per-thread T x T scratch, given back to the arena right after (the last allocation: a pointer move) */
    vt_arena_mark mark = vt_arena_get_mark(&g->arena);
    if (!att && !(scratch = ag_alloc(g, (int64_t)vt_attention_scratch_floats((int)T), false))) return NULL;
    vt_attention_forward_ex(o->val.data, att, stats, scratch, qkv->val.data, (int)B, (int)T, (int)C, NH);
    vt_arena_release(&g->arena, mark);
    vt_node *n = ag_record(g, VT_OP_ATTENTION, o, ins, 1);
    if (n) {
        n->ctx.attention.att = att;
        n->ctx.attention.stats = stats;
        n->ctx.attention.B = (int)B;
        n->ctx.attention.T = (int)T;
        n->ctx.attention.C = (int)C;
        n->ctx.attention.NH = NH;
    }
    return o;
}

int ag_backward_attention(vt_graph *g, vt_node *n)
{
    bool acc;
    float *dqkv = ag_grad_dst(g, n->in[0], &acc);
    if (!dqkv) return n->in[0]->requires_grad ? VT_ERR : VT_OK;
    const int T = n->ctx.attention.T;
    vt_arena_mark mark = vt_arena_get_mark(&g->arena);   /* scratch lives for this call only */
    float *scratch = ag_alloc(g, (int64_t)vt_attention_scratch_floats(T), false);
    if (!scratch) return VT_ERR;
    vt_attention_backward_ex(dqkv, n->out->grad, n->in[0]->val.data, n->ctx.attention.att, n->ctx.attention.stats,
                             scratch, n->ctx.attention.B, T, n->ctx.attention.C, n->ctx.attention.NH, acc);
    vt_arena_release(&g->arena, mark);
    return VT_OK;
}

vt_var *vt_softmax(vt_graph *g, vt_var *x)
{
    vt_var *ins[1] = {x};
    if (!ag_check_inputs("softmax", ins, 1)) return NULL;
    vt_var *o = ag_out(g, x->val.ndim, x->val.shape, "softmax", ins, 1);
    if (!o) return NULL;
    vt_softmax_forward(o->val.data, x->val.data, (int)ag_rows(x), (int)LAST(x));
    ag_record(g, VT_OP_SOFTMAX, o, ins, 1);
    return o;
}

int ag_backward_softmax(vt_graph *g, vt_node *n)
{
    vt_var *x = n->in[0];
    bool acc;
    float *dx = ag_grad_dst(g, x, &acc);
    if (x->requires_grad && !dx) return VT_ERR;
    if (dx) vt_softmax_backward(dx, n->out->grad, n->out->val.data, (int)ag_rows(x), (int)LAST(x), acc);
    return VT_OK;
}

/* logits (B, K), labels (B) -> scalar; cache probs (B, K) */
vt_var *vt_cross_entropy(vt_graph *g, vt_var *logits, const int *labels, float smoothing)
{
    vt_var *ins[1] = {logits};
    if (!ag_check_inputs("cross_entropy", ins, 1)) return NULL;
    if (!labels) {
        vt_err("cross_entropy: labels are NULL");
        return NULL;
    }
    if (logits->val.ndim != 2) {
        vt_err("cross_entropy: logits %s must be (B, classes)", ag_shape(logits));
        return NULL;
    }
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) {
        vt_err("cross_entropy: label smoothing %g outside [0, 1)", smoothing);
        return NULL;
    }
    int B = (int)logits->val.shape[0], K = (int)logits->val.shape[1];
    for (int b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= K) {
            vt_err("cross_entropy: label %d of sample %d outside [0, %d)", labels[b], b, K);
            return NULL;
        }
    vt_var *o = ag_out(g, 1, (int64_t[]){1}, "loss", ins, 1);
    float *probs = o ? ag_alloc(g, (int64_t)B * K, false) : NULL;
    if (!probs) return NULL;
    o->val.data[0] = (float)vt_crossentropy_forward(probs, logits->val.data, labels, B, K, smoothing);
    vt_node *n = ag_record(g, VT_OP_CROSSENTROPY, o, ins, 1);
    if (n) {
        n->ctx.cross_entropy.probs = probs;
        n->ctx.cross_entropy.labels = labels;
        n->ctx.cross_entropy.targets = NULL;
        n->ctx.cross_entropy.smoothing = smoothing;
        n->ctx.cross_entropy.B = B;
        n->ctx.cross_entropy.K = K;
    }
    return o;
}

/* logits (B, K), targets (B, K) -> scalar; the same op as vt_cross_entropy with ctx.targets set */
vt_var *vt_cross_entropy_soft(vt_graph *g, vt_var *logits, const float *targets)
{
    vt_var *ins[1] = {logits};
    if (!ag_check_inputs("cross_entropy", ins, 1)) return NULL;
    if (!targets || logits->val.ndim != 2) {
        vt_err("cross_entropy: %s", targets ? "logits must be (B, classes)" : "soft targets are NULL");
        return NULL;
    }
    int B = (int)logits->val.shape[0], K = (int)logits->val.shape[1];
    vt_var *o = ag_out(g, 1, (int64_t[]){1}, "loss", ins, 1);
    float *probs = o ? ag_alloc(g, (int64_t)B * K, false) : NULL;
    if (!probs) return NULL;
    o->val.data[0] = (float)vt_crossentropy_soft_forward(probs, logits->val.data, targets, B, K);
    vt_node *n = ag_record(g, VT_OP_CROSSENTROPY, o, ins, 1);
    if (n) n->ctx.cross_entropy = (struct vt_ctx_cross_entropy){.probs = probs, .targets = targets, .B = B, .K = K};
    return o;
}

int ag_backward_cross_entropy(vt_graph *g, vt_node *n)
{
    bool acc;
    float *dl = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !dl) return VT_ERR;
    const struct vt_ctx_cross_entropy *c = &n->ctx.cross_entropy;
    if (dl && c->targets) vt_crossentropy_soft_backward(dl, c->probs, c->targets, c->B, c->K, n->out->grad[0], acc);
    else if (dl) vt_crossentropy_backward(dl, c->probs, c->labels, c->B, c->K, c->smoothing, n->out->grad[0], acc);
    return VT_OK;
}

/* img (B, C, H, W) -> (B, (H/P)*(W/P), C*P*P) */
vt_var *vt_patchify(vt_graph *g, vt_var *img, int P)
{
    vt_var *ins[1] = {img};
    if (!ag_check_inputs("patchify", ins, 1)) return NULL;
    if (img->val.ndim != 4 || P < 1 || img->val.shape[2] % P || img->val.shape[3] % P) {
        vt_err("patchify: image %s must be (B, C, H, W) with H and W multiples of the patch size %d", ag_shape(img), P);
        return NULL;
    }
    int64_t B = img->val.shape[0], C = img->val.shape[1], H = img->val.shape[2], W = img->val.shape[3];
    vt_var *o = ag_out(g, 3, (int64_t[]){B, (H / P) * (W / P), C * P * P}, "patches", ins, 1);
    if (!o) return NULL;
    vt_patchify_forward(o->val.data, img->val.data, (int)B, (int)C, (int)H, (int)W, P);
    vt_node *n = ag_record(g, VT_OP_PATCHIFY, o, ins, 1);
    if (n) {
        n->ctx.patchify.B = (int)B;
        n->ctx.patchify.C = (int)C;
        n->ctx.patchify.H = (int)H;
        n->ctx.patchify.W = (int)W;
        n->ctx.patchify.P = P;
    }
    return o;
}

int ag_backward_patchify(vt_graph *g, vt_node *n)
{
    bool acc;
    float *d = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !d) return VT_ERR;
    const struct vt_ctx_patchify *c = &n->ctx.patchify;
    if (d) vt_patchify_backward(d, n->out->grad, c->B, c->C, c->H, c->W, c->P, acc);
    return VT_OK;
}

vt_var *vt_embed(vt_graph *g, vt_var *tok, vt_var *cls, vt_var *pos) { return vt_embed_reg(g, tok, cls, NULL, pos); }

/* tok (B, N, D), cls (1, 1, D), reg (1, R, D) or NULL, pos (1, 1+R+N, D) or (1, N, D) -> (B, 1+R+N, D) */
vt_var *vt_embed_reg(vt_graph *g, vt_var *tok, vt_var *cls, vt_var *reg, vt_var *pos)
{
    vt_var *ins[4] = {tok, cls, pos, reg};
    const int nin = reg ? 4 : 3;
    if (!ag_check_inputs("embed", ins, nin)) return NULL;
    if (tok->val.ndim != 3) {
        vt_err("embed: tokens %s must be (B, N, D)", ag_shape(tok));
        return NULL;
    }
    const int64_t B = tok->val.shape[0], N = tok->val.shape[1], D = tok->val.shape[2];
    const int64_t R = reg ? NUMEL(reg) / D : 0, T = 1 + R + N;
    if (NUMEL(cls) != D || (reg && NUMEL(reg) != R * D) || (NUMEL(pos) != T * D && NUMEL(pos) != N * D)) {
        vt_err("embed: cls_token %s / reg_token %s / pos_embed %s do not fit tokens %s (expected (1, 1, %lld), (1, R, "
               "%lld) and (1, %lld or %lld, %lld))", ag_shape(cls), reg ? ag_shape(reg) : "none", ag_shape(pos),
               ag_shape(tok), (long long)D, (long long)D, (long long)T, (long long)N, (long long)D);
        return NULL;
    }
    const bool pos_all = NUMEL(pos) == T * D;
    vt_var *o = ag_out(g, 3, (int64_t[]){B, T, D}, "embed", ins, nin);
    if (!o) return NULL;
    vt_embed_forward_ex(o->val.data, tok->val.data, cls->val.data, reg ? reg->val.data : NULL, pos->val.data, (int)B,
                        (int)N, (int)R, (int)D, pos_all);
    vt_node *n = ag_record(g, VT_OP_EMBED, o, ins, nin);
    if (n) n->ctx.embed = (struct vt_ctx_embed){.B = (int)B, .N = (int)N, .R = (int)R, .D = (int)D, .pos_all = pos_all};
    return o;
}

int ag_backward_embed(vt_graph *g, vt_node *n)
{
    bool acc;
    float *dtok = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !dtok) return VT_ERR;
    const struct vt_ctx_embed *c = &n->ctx.embed;
    float *dreg = n->nin > 3 ? ag_grad_of(g, n->in[3]) : NULL;
    vt_embed_backward_ex(dtok, ag_grad_of(g, n->in[1]), dreg, ag_grad_of(g, n->in[2]), n->out->grad, c->B, c->N, c->R,
                         c->D, c->pos_all, acc);
    return VT_OK;
}

vt_var *vt_token_keep(vt_graph *g, vt_var *x, int prefix, const int32_t *keep, int K)
{
    vt_var *ins[1] = {x};
    if (!ag_check_inputs("token_keep", ins, 1)) return NULL;
    if (x->val.ndim != 3 || prefix < 0 || K < 1 || !keep || prefix + K > x->val.shape[1]) {
        vt_err("token_keep: input %s must be (B, T, D) with %d prefix + %d kept tokens at most T", ag_shape(x), prefix,
               K);
        return NULL;
    }
    const int64_t B = x->val.shape[0], T = x->val.shape[1], D = x->val.shape[2];
    for (int64_t i = 0; i < B * K; i++)
        if (keep[i] < prefix || keep[i] >= T) {
            vt_err("token_keep: index %d of image %lld outside [%d, %lld)", (int)keep[i], (long long)(i / K), prefix,
                   (long long)T);
            return NULL;
        }
    vt_var *o = ag_out(g, 3, (int64_t[]){B, prefix + K, D}, "token_keep", ins, 1);
    if (!o) return NULL;
    vt_token_keep_forward(o->val.data, x->val.data, keep, (int)B, (int)T, K, (int)D, prefix);
    if (!(g->grad_enabled && o->requires_grad)) return o;
    int32_t *idx = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)(B * K));   /* the caller may reuse keep */
    if (!idx) return NULL;
    memcpy(idx, keep, sizeof(int32_t) * (size_t)(B * K));
    vt_node *n = ag_record(g, VT_OP_TOKEN_KEEP, o, ins, 1);
    if (n) {
        n->ctx.token_keep.keep = idx;
        n->ctx.token_keep.B = (int)B;
        n->ctx.token_keep.T = (int)T;
        n->ctx.token_keep.K = K;
        n->ctx.token_keep.D = (int)D;
        n->ctx.token_keep.prefix = prefix;
    }
    return o;
}

int ag_backward_token_keep(vt_graph *g, vt_node *n)
{
    bool acc;
    float *dx = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !dx) return VT_ERR;
    const struct vt_ctx_token_keep *c = &n->ctx.token_keep;
    if (dx) vt_token_keep_backward(dx, n->out->grad, c->keep, c->B, c->T, c->K, c->D, c->prefix, acc);
    return VT_OK;
}

vt_var *vt_token_fill(vt_graph *g, vt_var *x, vt_var *fill, const int32_t *src, int TO)
{
    vt_var *ins[2] = {x, fill};
    if (!ag_check_inputs("token_fill", ins, 2)) return NULL;
    if (x->val.ndim != 3 || TO < 1 || !src || vt_tensor_numel(&fill->val) != x->val.shape[2]) {
        vt_err("token_fill: input %s must be (B, T, D) and the fill %s hold D values, for %d output tokens", ag_shape(x),
               ag_shape(fill), TO);
        return NULL;
    }
    const int64_t B = x->val.shape[0], T = x->val.shape[1], D = x->val.shape[2];
    for (int64_t i = 0; i < B * TO; i++)
        if (src[i] < -1 || src[i] >= T) {
            vt_err("token_fill: source %d of token %lld of image %lld outside [-1, %lld)", (int)src[i], (long long)(i % TO),
                   (long long)(i / TO), (long long)T);
            return NULL;
        }
    vt_var *o = ag_out(g, 3, (int64_t[]){B, TO, D}, "token_fill", ins, 2);
    if (!o) return NULL;
    vt_token_fill_forward(o->val.data, x->val.data, fill->val.data, src, (int)B, (int)T, TO, (int)D);
    if (!(g->grad_enabled && o->requires_grad)) return o;
    int32_t *idx = vt_arena_alloc(&g->arena, sizeof(int32_t) * (size_t)(B * TO));   /* the caller may reuse src */
    if (!idx) return NULL;
    memcpy(idx, src, sizeof(int32_t) * (size_t)(B * TO));
    vt_node *n = ag_record(g, VT_OP_TOKEN_FILL, o, ins, 2);
    if (n) n->ctx.token_fill = (struct vt_ctx_token_fill){idx, (int)B, (int)T, TO, (int)D};
    return o;
}

int ag_backward_token_fill(vt_graph *g, vt_node *n)
{
    bool acc;
    float *dx = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !dx) return VT_ERR;
    const struct vt_ctx_token_fill *c = &n->ctx.token_fill;
    vt_token_fill_backward(dx, ag_grad_of(g, n->in[1]), n->out->grad, c->src, c->B, c->T, c->TO, c->D, acc);
    return VT_OK;
}

/* x (B, T, D) -> (B, D) */
vt_var *vt_pool(vt_graph *g, vt_var *x, vt_pool_kind kind, int prefix)
{
    vt_var *ins[1] = {x};
    if (!ag_check_inputs("pool", ins, 1)) return NULL;
    if (x->val.ndim != 3 || (kind == VT_POOL_MEAN && (prefix < 0 || prefix >= x->val.shape[1]))) {
        vt_err("pool: input %s must be (B, T, D) with more than %d tokens", ag_shape(x), prefix);
        return NULL;
    }
    int64_t B = x->val.shape[0], T = x->val.shape[1], D = x->val.shape[2];
    vt_var *o = ag_out(g, 2, (int64_t[]){B, D}, "pool", ins, 1);
    if (!o) return NULL;
    vt_pool_forward(o->val.data, x->val.data, (int)B, (int)T, (int)D, kind, prefix);
    vt_node *n = ag_record(g, VT_OP_POOL, o, ins, 1);
    if (n) {
        n->ctx.pool.kind = kind;
        n->ctx.pool.B = (int)B;
        n->ctx.pool.T = (int)T;
        n->ctx.pool.D = (int)D;
        n->ctx.pool.prefix = prefix;
    }
    return o;
}

int ag_backward_pool(vt_graph *g, vt_node *n)
{
    bool acc;
    float *d = ag_grad_dst(g, n->in[0], &acc);
    if (n->in[0]->requires_grad && !d) return VT_ERR;
    const struct vt_ctx_pool *c = &n->ctx.pool;
    if (d) vt_pool_backward(d, n->out->grad, c->B, c->T, c->D, c->kind, c->prefix, acc);
    return VT_OK;
}

vt_var *vt_residual(vt_graph *g, vt_var *x, vt_var *br, vt_var *gamma, const float *keep)
{
    vt_var *ins[3] = {x, br, gamma};
    const int nin = gamma ? 3 : 2;
    if (!ag_check_inputs("residual", ins, nin)) return NULL;
    if (x->val.ndim != 3 || !vt_shape_equal(&x->val, &br->val) || (gamma && NUMEL(gamma) != x->val.shape[2])) {
        vt_err("residual: input %s and branch %s must be the same (B, T, D), gamma %s (D)", ag_shape(x), ag_shape(br),
               gamma ? ag_shape(gamma) : "none");
        return NULL;
    }
    const int64_t B = x->val.shape[0], T = x->val.shape[1], D = x->val.shape[2];
    vt_var *o = ag_out(g, 3, x->val.shape, "residual", ins, nin);
    if (!o) return NULL;
    vt_residual_forward(o->val.data, x->val.data, br->val.data, gamma ? gamma->val.data : NULL, keep, (int)B, T, (int)D);
    if (!(g->grad_enabled && o->requires_grad)) return o;
    float *k = NULL;
    if (keep) {
        if (!(k = vt_arena_alloc(&g->arena, sizeof(float) * (size_t)B))) return NULL;
        memcpy(k, keep, sizeof(float) * (size_t)B);
    }
    vt_node *n = ag_record(g, VT_OP_RESIDUAL, o, ins, nin);
    if (n) n->ctx.residual = (struct vt_ctx_residual){.keep = k, .R = T, .B = (int)B, .D = (int)D};
    return o;
}

int ag_backward_residual(vt_graph *g, vt_node *n)
{
    const struct vt_ctx_residual *c = &n->ctx.residual;
    vt_var *gamma = n->nin > 2 ? n->in[2] : NULL;
    bool acc;
    float *dbr = ag_grad_dst(g, n->in[1], &acc);
    if (n->in[1]->requires_grad && !dbr) return VT_ERR;
    float *dgamma = gamma ? ag_grad_of(g, gamma) : NULL;
    if (gamma && gamma->requires_grad && !dgamma) return VT_ERR;
    vt_residual_backward(dbr, dgamma, n->out->grad, n->in[1]->val.data, gamma ? gamma->val.data : NULL, c->keep, c->B,
                         c->R, c->D, acc);
    return ag_grad_add(g, n, n->in[0], n->out->grad);   /* last: it may take the output's gradient buffer */
}
