"""The neurons, written one time step at a time.

These functions are the definition of the method's dynamics. Every faster path in the kit is a
multi-step version of one of them in common/fast/, chosen by the execution setting (common.execution),
and tested against it:

  definition  fast path (common/fast/)          the tests that prove them equal (tests/)
  lif_step    lif.py   lif_multistep, Triton    test_fast_lif.py::test_matches_definition_float32,
                                                test_fast_lif.py::test_second_order_equals_definition,
                                                test_cuda.py::test_lif_kernels_equal_the_definition
  rnn_step    rnn.py   rnn_multistep            test_fast_paths.py::test_rnn_multistep_equals_rnn_step,
                                                test_cuda.py::test_fc_training_pass_equals_the_definition
  lstm_step   lstm.py  lstm_multistep           test_fast_paths.py::test_lstm_multistep_equals_lstm_step
  rcnn_step   rcnn.py  rcnn_multistep, pooling  test_fast_paths.py::test_rcnn_multistep_equals_rcnn_step,
                                                test_fast_paths.py::test_scan_nodes_pass_gradcheck_and_gradgradcheck
Whole networks, forward_definition against forward_fast: test_execution.py::test_fc_default_path_against_the_definition,
test_execution.py::test_conv_default_path_against_the_definition,
test_fast_paths.py::test_conv_layer_major_forward_has_the_definitions_bits_in_float32.
"""
import torch


class SpikeFn(torch.autograd.Function):
    """Heaviside spike with the rectangular surrogate gradient.

    forward:  spike = (u - thresh) > 0            (strict: u == thresh gives no spike)
    backward: d spike / d u = 1 / (2 lens)  where |u - thresh| < lens, else 0

    Written in the setup_context style, with a jvp and a generated vmap rule, so that it also
    works under torch.func transforms (vmap, grad, jvp). The backward is made of torch ops,
    so double backward (Hessian-vector products) works too.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(u, thresh, lens):
        return (u - thresh > 0).to(u.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, thresh, lens = inputs
        ctx.thresh, ctx.lens = thresh, lens
        ctx.save_for_backward(u)
        ctx.save_for_forward(u)

    @staticmethod
    def backward(ctx, grad_spike):
        u, = ctx.saved_tensors
        return grad_spike * surrogate(u, ctx.thresh, ctx.lens), None, None

    @staticmethod
    def jvp(ctx, u_tangent, thresh_tangent, lens_tangent):
        u, = ctx.saved_tensors
        return u_tangent * surrogate(u, ctx.thresh, ctx.lens)


def surrogate(u, thresh, lens):
    """Rectangular window of half-width `lens` and height 1/(2 lens) (area 1)."""
    return ((u - thresh).abs() < lens).to(u.dtype) / (2 * lens)


def spike(u, thresh, lens):
    return SpikeFn.apply(u, thresh, lens)


def lif_step(mem, spike_prev, current, decay, thresh, lens):
    """Leaky integrate-and-fire with reset by multiplication.

    mem_t = mem_{t-1} * (1 - spike_{t-1}) * decay + I_t ;  spike_t = H(mem_t - thresh)
    The previous spike is not detached: gradients flow through the reset.
    """
    mem = mem * (1 - spike_prev) * decay + current
    return mem, spike(mem, thresh, lens)


def rnn_step(x, h, w_fc, w_fv, bias=None):
    """Sigmoid recurrent neuron, by default without bias: h_t = sigmoid(x_t W_fc [+ b] + h_{t-1} W_fv)."""
    if bias is None:
        return torch.sigmoid(x @ w_fc + h @ w_fv)
    return torch.sigmoid(x @ w_fc + bias + h @ w_fv)


def rnn_step_union(x, h, w_union):
    """The same neuron with input and recurrent weights stacked: W_union = [W_fc; W_fv]."""
    return torch.sigmoid(torch.cat([x, h], dim=1) @ w_union)


def lstm_step(x, h, c, w_i, w_h):
    """LSTM neuron without bias; w_i is [4, in, hid], w_h is [4, hid, hid], gates i, f, g, o."""
    i = torch.sigmoid(x @ w_i[0] + h @ w_h[0])
    f = torch.sigmoid(x @ w_i[1] + h @ w_h[1])
    g = torch.tanh(x @ w_i[2] + h @ w_h[2])
    o = torch.sigmoid(x @ w_i[3] + h @ w_h[3])
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c


RCNN_UPDATES = {
    "tanh": lambda fc, fv: torch.tanh(fc + torch.relu(fv)),  # DVS Gesture
    "relu": lambda fc, fv: torch.relu(fc + fv),              # N-MNIST
}


def rcnn_step(x, y, fc, fv, kind):
    """Recurrent conv neuron: y_t = tanh(fc(x_t) + relu(fv(y_{t-1}))) (kind 'tanh', DVS Gesture) or
    relu(fc(x_t) + fv(y_{t-1})) (kind 'relu', N-MNIST); fc, fv are convs; y None: the zero state."""
    drive = fc(x)
    return RCNN_UPDATES[kind](drive, fv(torch.zeros_like(drive) if y is None else y))
