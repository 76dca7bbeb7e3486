"""Multi-step RCNN (common.neurons.rcnn_step over T steps, with the layer's average pooling) as one
autograd node, and average pooling that keeps nothing for its backward."""
import torch
import torch.nn.functional as F

from common.fast import is_batched


def rcnn_multistep(drive, conv, kind, pool):
    """pooled ys, where ys[t] = neurons.RCNN_UPDATES[kind](drive[t], conv(ys[t-1])), ys[-1] = 0: drive [T, B, C, H, W]
    (common.neurons.rcnn_step with drive[t] = fc(x_t), then the layer's average pooling (kernel, stride) = pool).

    The definition's operations step by step (same bits), as one autograd node that keeps only the
    states (and, for 'tanh', where conv(y) > 0 as bools) instead of three maps per step, and receives
    the gradient of the pooled maps (a quarter of the size). Its backward is a reverse loop of
    input-gradient convs plus a few weight-gradient convs over chunks of steps, written in differentiable
    torch ops on the saved tensors, so a second backward (Hessians) is exact.
    """
    return _RCNNScan.apply(drive, conv.weight, conv.bias, kind, conv.padding, pool)[0]


class _RCNNScan(torch.autograd.Function):

    @staticmethod
    def forward(ctx, drive, weight, bias, kind, padding, pool):
        ys = torch.empty_like(drive)
        mask = torch.empty_like(drive, dtype=torch.bool) if kind == "tanh" else None
        y = torch.zeros_like(drive[0])
        for t in range(len(drive)):
            fv = F.conv2d(y, weight, bias, padding=padding)
            if kind == "tanh":
                torch.gt(fv, 0, out=mask[t])
                y = torch.tanh(drive[t] + torch.relu(fv), out=ys[t])
            else:
                y = ys[t].copy_(torch.relu(drive[t] + fv))
        pooled = F.avg_pool2d(ys.flatten(0, 1), *pool)
        ctx.save_for_backward(ys, weight, mask)
        ctx.kind, ctx.padding, ctx.pool = kind, padding, pool
        ctx.set_materialize_grads(False)
        return pooled.view(*ys.shape[:3], *pooled.shape[-2:]), ys  # ys: an output, so that it can be saved

    @staticmethod
    def backward(ctx, grad_pooled, grad_ys):
        ys, weight, mask = ctx.saved_tensors
        (k, s), shape_only = ctx.pool, ys.new_zeros(()).expand(ys.shape[1:])

        def grad(t):  # dL/dy_t: through the pooling, and directly (only in a second backward)
            g = 0 if grad_pooled is None else \
                torch.ops.aten.avg_pool2d_backward(grad_pooled[t], shape_only, [k, k], [s, s], [0, 0], False, True, None)
            return g if grad_ys is None else g + grad_ys[t]

        tanh, T, pad = ctx.kind == "tanh", len(ys), ctx.padding
        inplace = not torch.is_grad_enabled() and not any(is_batched(g) for g in (grad_pooled, grad_ys) if g is not None)
        da = torch.empty_like(ys) if inplace else [None] * T  # dL/d drive
        db = [None] * T  # dL/d conv(y_{t-1}), kept only until its chunk's weight gradient is taken
        dw, dbias = torch.zeros_like(weight), 0
        carry, chunk = None, -(-T // 8)  # the weight gradient in about 8 products: few calls, small buffers
        flat = lambda a: a.reshape(-1, *a.shape[2:])
        for t in range(T - 1, -1, -1):
            g = grad(t) if carry is None else grad(t) + carry
            local = 1 - ys[t] * ys[t] if tanh else ys[t] > 0
            if inplace:
                da_t = torch.mul(g, local, out=da[t])
            else:
                da[t] = da_t = g * local
            db[t] = da_t * mask[t] if tanh else da_t
            if t:
                carry = torch.nn.grad.conv2d_input(ys[t - 1].shape, weight, db[t], padding=pad)
            if t % chunk == 0:  # steps t .. hi-1 are complete
                hi = min(t + chunk, T)
                d = torch.stack(db[t:hi])
                db[t:hi] = [None] * (hi - t)
                dbias = dbias + d.sum((0, 1, 3, 4))
                lo = max(t, 1)  # y_{-1} = 0 adds nothing to dw
                if lo < hi:
                    dw = dw + torch.nn.grad.conv2d_weight(flat(ys[lo - 1:hi - 1]), weight.shape, flat(d[lo - t:]), padding=pad)
        return torch.stack(da) if not inplace else da, dw, dbias if ctx.needs_input_grad[2] else None, None, None, None


def pooled_unsaved(layer, x):
    """layer.pooled(x) (same bits) without keeping x for the backward, which needs only its shape."""
    lead = x.shape[:-3]
    out = _AvgPool.apply(x.reshape(-1, *x.shape[-3:]), *layer.pool)
    return out.view(*lead, *out.shape[1:])


class _AvgPool(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, kernel, stride):
        ctx.shape, ctx.pool = x.shape, (kernel, stride)
        return F.avg_pool2d(x, kernel, stride)

    @staticmethod
    def backward(ctx, grad):
        (k, s), shape_only = ctx.pool, grad.new_zeros(()).expand(ctx.shape)
        return torch.ops.aten.avg_pool2d_backward(grad, shape_only, [k, k], [s, s], [0, 0], False, True, None), None, None
