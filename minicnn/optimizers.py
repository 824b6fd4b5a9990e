"""Optimizers with Keras's names, defaults and update rules.

An optimizer never sees layers: apply_gradients takes (grad, param) pairs, in the same order
every step, and updates each param in place. Its state (Adam's moments) is created lazily
with zeros_like(param) on the first step, so it has the param's shape, dtype and device.

A step is all or nothing: it is computed on copies and committed only when every new param
and state array is finite, with Ctrl-C held back during the commit. So the params never hold
half a step, and a step that would put NaN or Inf in a weight is never applied.

With use_ema=True an optimizer also keeps Keras's exponential moving average of each param
(state "average", updated after each step), which the params take every ema_overwrite_frequency
steps and at finalize_variable_values (fit calls it after its last epoch).
"""
import numpy as np

from minicnn import schedules
from minicnn.gpu import array_module
from minicnn.io import interrupts_deferred
from minicnn.legacy import deprecated
from minicnn.tape import plain


class NonFiniteError(RuntimeError):
    """A training step would have put NaN or Inf into the weights; it was not applied."""


def all_finite(*arrays):
    """True when every entry of every array is finite (one device sync for GPU arrays)."""
    if not arrays:
        return True
    xp = array_module(arrays[0])
    return bool(xp.stack([xp.isfinite(a).all() for a in arrays]).all())


class Optimizer:
    """What every optimizer shares, as Keras 3's base optimizer: the learning rate (or its
    schedule), decoupled weight decay and gradient clipping; apply_gradients runs one step, and
    each subclass's update() is its rule for one param.

    Args:
        learning_rate (float | LearningRateSchedule): the step size, or a schedule of it
            (minicnn.schedules).
        weight_decay (float | None): decoupled weight decay, p -= p * weight_decay * lr before each step.
            Defaults to None.
        clipnorm (float | None): clip each gradient to this norm. Defaults to None.
        clipvalue (float | None): clip each gradient's entries to [-clipvalue, clipvalue]. Defaults to
            None.
        global_clipnorm (float | None): clip all gradients together to this global norm. Defaults to None
            (only one of the three clips may be set).
        use_ema (bool): keep an exponential moving average of the params, which they take at the end
            of fit (finalize_variable_values). Defaults to False.
        ema_momentum (float): after each step, average = ema_momentum * average + (1 - ema_momentum) * p
            (after the first step, average = p), in [0, 1]. Defaults to 0.99.
        ema_overwrite_frequency (int | None): with use_ema, the params also take their average every that
            many steps. Defaults to None (only at the end of fit).
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, **kwargs):
        if "lr" in kwargs:  # Keras 2's name, which wins over learning_rate as in Keras 2
            deprecated("the optimizer argument lr=", "learning_rate=")
            learning_rate = kwargs.pop("lr")
        decay = kwargs.pop("decay", 0.0)
        if decay:
            deprecated("the optimizer argument decay=", "learning_rate=keras.optimizers.schedules.InverseTimeDecay("
                       "lr, decay_steps=1, decay_rate=decay), the same rates")
        if not isinstance(decay, (int, float)) or isinstance(decay, bool) or not decay >= 0:
            raise ValueError(f"decay cannot be less than 0. Received: decay={decay!r}.")
        self.decay = float(decay)  # Keras 2's: the rate of step t is lr / (1 + decay * t), t = steps done before
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        if isinstance(learning_rate, dict):  # a schedule, from a saved file
            learning_rate = schedules.CLASSES[learning_rate["class_name"]].from_config(learning_rate["config"])
        self.schedule = learning_rate if isinstance(learning_rate, schedules.LearningRateSchedule) else None
        if self.schedule is None and not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self._learning_rate = None if self.schedule else float(learning_rate)
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set.")
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = None if weight_decay is None else float(weight_decay)  # p -= p * wd * lr first, as Keras
        if use_ema:  # Keras's checks, made only when the average is kept
            if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float)) \
                    or not 0 <= ema_momentum <= 1:
                raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum!r}")
            if ema_overwrite_frequency and (isinstance(ema_overwrite_frequency, bool)
                                            or not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
                raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                                 f"ema_overwrite_frequency={ema_overwrite_frequency!r}")
        self.use_ema, self.ema_momentum, self.ema_overwrite_frequency = bool(use_ema), ema_momentum, ema_overwrite_frequency
        self.iterations = 0  # steps applied so far
        self.slots = None  # per-param state: a list of dicts of arrays, one dict per param

    @property
    def learning_rate(self):
        """The rate of the next step: the schedule's at the current iteration, if there is one,
        divided by 1 + decay * iterations when Keras 2's decay= was given."""
        rate = float(self.schedule(self.iterations)) if self.schedule else self._learning_rate
        return rate / (1.0 + self.decay * self.iterations) if self.decay else rate

    @learning_rate.setter
    def learning_rate(self, value):
        if self.schedule:
            raise TypeError("This optimizer was created with a learning-rate schedule: its rate cannot be set "
                            "(as in Keras); give it a float learning_rate to change the rate from a callback")
        # With decay, the rate set is the next step's, and decay goes on from it: the same rates as
        # Keras 2, where a callback sets the undecayed lr to the old one times a factor.
        self._learning_rate = float(value) * (1.0 + self.decay * self.iterations)

    @property
    def lr(self):
        """Keras 2's name of learning_rate."""
        deprecated("optimizer.lr", "optimizer.learning_rate")
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        deprecated("optimizer.lr", "optimizer.learning_rate")
        self.learning_rate = value

    def clip(self, grads):
        """The gradients clipped as Keras clips them: each to norm clipnorm, all together to
        global_clipnorm, or each value to [-clipvalue, clipvalue]."""
        if self.clipnorm:
            xp = array_module(grads[0])
            return [g * (self.clipnorm / max(float(xp.sqrt((g * g).sum())), self.clipnorm)) for g in grads]
        if self.global_clipnorm:
            xp = array_module(grads[0])
            norm = float(xp.sqrt(sum(float((g * g).sum()) for g in grads)))
            return [g * (self.global_clipnorm / max(norm, self.global_clipnorm)) for g in grads]
        if self.clipvalue:
            return [array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def apply_gradients(self, grads_and_params):
        """One step: update every param in place from its grad (pairs of equal shapes).

        All or nothing (see the module docstring): raises NonFiniteError, changing nothing,
        when the step would make a param or the optimizer's state NaN or Inf.
        """
        pairs = [(g, p) for g, p in grads_and_params]
        for i, (g, p) in enumerate(pairs):
            if g is None:  # tape.gradient gives None where the loss does not reach a weight
                raise ValueError(f"the gradient of weight {i} (shape {p.shape}) is None: the loss does not depend on "
                                 "it. Leave it out of the variables, or give np.zeros_like(weight)")
        # the arrays behind minicnn.tape.Variable weights and Tracked gradients: the updates stay in place
        pairs = [(plain(g), plain(p)) for g, p in pairs]
        if self.clipnorm or self.global_clipnorm or self.clipvalue:
            pairs = list(zip(self.clip([g for g, _ in pairs]), [p for _, p in pairs]))
        slots = self.slots
        if slots is None:
            slots = [{**{k: self.initial_slot(k, p) for k in self.slot_names},
                      **({"average": array_module(p).zeros_like(p)} if self.use_ema else {})} for _, p in pairs]
        if len(pairs) != len(slots):
            raise ValueError(f"optimizer was built for {len(slots)} params, got {len(pairs)}")
        for g, p in pairs:
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {g.shape} does not match param of shape {p.shape}")
        if self._compiled_step(pairs, slots):
            return
        new_params = [p.copy() for _, p in pairs]
        new_slots = [{k: v.copy() for k, v in s.items()} for s in slots]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked for just below (host arrays)
            for (g, _), p, s in zip(pairs, new_params, new_slots):
                if self.weight_decay:
                    p -= p * p.dtype.type(self.weight_decay) * p.dtype.type(self.learning_rate)
                self.update(p, g, s, self.iterations + 1)
        if not all_finite(*new_params, *(v for s in new_slots for v in s.values())):
            i = next(i for i, p in enumerate(new_params) if not all_finite(p, *new_slots[i].values()))
            raise NonFiniteError(f"the update of param {i} (shape {new_params[i].shape}) is not finite; "
                                 "the step was not applied")
        with interrupts_deferred():  # a few copies: done whole, or (Ctrl-C before) not at all
            for (_, p), new in zip(pairs, new_params):
                p[...] = new
            self.slots = new_slots
            self._after_step([p for _, p in pairs])

    def apply(self, grads, trainable_variables):
        """One step from two lists, as Keras 3's optimizer.apply(grads, model.trainable_variables)."""
        grads, variables = list(grads), list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"apply got {len(grads)} gradients for {len(variables)} variables")
        self.apply_gradients(zip(grads, variables))

    def _after_step(self, params):
        """The end of a committed step: with use_ema, Keras's moving average of each param,
        average = m * average + (1 - m) * p, m = ema_momentum (0 at the first step, so the
        average starts at the params), and every ema_overwrite_frequency steps the params take it;
        then the step is counted."""
        if self.use_ema:
            for p, s in zip(params, self.slots):
                dt = p.dtype.type
                m = dt(self.ema_momentum) if self.iterations else dt(0)
                s["average"][...] = m * s["average"] + (dt(1) - m) * p
            if self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0:
                self.finalize_variable_values(params)
        self.iterations += 1

    def finalize_variable_values(self, var_list):
        """With use_ema, each variable of var_list (the params, in the order of the steps) takes its
        moving average, in place, as Keras's; fit calls it after its last epoch. Nothing otherwise,
        or before the first step."""
        if not self.use_ema or self.slots is None:
            return
        var_list = [plain(v) for v in var_list]
        if len(var_list) != len(self.slots):
            raise ValueError(f"The length of model variables ({len(var_list)}) to override does not match the length "
                             f"of model variables stored in the optimizer ({len(self.slots)}). Please check if the "
                             "optimizer was called on your model.")
        for v, s in zip(var_list, self.slots):
            v[...] = s["average"]

    def state_names(self):
        """The names of each param's state arrays: the rule's slots, and "average" with use_ema."""
        return (*self.slot_names, *(("average",) if self.use_ema else ()))

    def build(self, variables):
        """Keras's optimizer.build(variables): the state is made at the first step; nothing to do."""

    slot_names = ()

    def initial_slot(self, name, p):
        """The state array `name` of param p before the first step: zeros, unless a rule says otherwise."""
        return array_module(p).zeros_like(p)

    def update(self, p, g, slots, t):
        raise NotImplementedError

    def _compiled_step(self, pairs, slots):
        """Run the step with a compiled twin of update() when the kernels have one; False if not."""
        return False

    def _kernels_for_step(self, name, pairs):
        """The backend's kernels when they compile step kernel `name` for these arrays (all on the
        host or all on the device, of one dtype, contiguous params); None if not."""
        from minicnn import backend, gpu
        params, grads = [p for _, p in pairs], [g for g, _ in pairs]
        kernels = backend.kernels_for(params[0])
        if not kernels.speeds_up(name) or len({gpu.is_device_array(a) for a in params + grads}) != 1 \
                or len({a.dtype for a in params + grads}) != 1 or not all(p.flags.c_contiguous for p in params):
            return None
        return kernels

    def _check_then_commit(self, step, pairs, slots, *scalars):
        """Run a compiled step kernel twice: a check that every new value is finite (changing
        nothing), then the write, so the step is all or nothing without copies. Raises
        NonFiniteError, naming the first bad param, when the check fails."""
        params, grads = [p for _, p in pairs], [g for g, _ in pairs]
        rule = [{k: s[k] for k in self.slot_names} for s in slots]  # the kernel's state: no moving average
        dt = params[0].dtype.type
        with np.errstate(over="ignore"):  # an absurd learning rate becomes Inf, and the step is refused
            decay = (dt(self.weight_decay), dt(self.learning_rate)) if self.weight_decay else None
        if not step(params, grads, rule, *scalars, commit=False, decay=decay):
            i = next(i for i, (p, g, s) in enumerate(zip(params, grads, rule))
                     if not step([p], [g], [s], *scalars, commit=False, decay=decay))
            raise NonFiniteError(f"the update of param {i} (shape {params[i].shape}) is not finite; "
                                 "the step was not applied")
        with interrupts_deferred():  # one compiled pass per param: done whole, or not at all
            step(params, grads, rule, *scalars, commit=True, decay=decay)
            self.slots = slots
            self._after_step(params)
        return True

    def get_config(self):
        """The constructor's arguments, plus "name": enough to rebuild it with from_config."""
        rate = {"class_name": type(self.schedule).__name__, "config": self.schedule.get_config()} if self.schedule \
            else self._learning_rate
        config = {"name": type(self).__name__, "learning_rate": rate, **({"decay": self.decay} if self.decay else {}),
                  **{k: v for k in ("clipnorm", "clipvalue", "global_clipnorm") if (v := getattr(self, k)) is not None},
                  **({"use_ema": True, "ema_momentum": self.ema_momentum,
                      "ema_overwrite_frequency": self.ema_overwrite_frequency} if self.use_ema else {})}
        return config if self.weight_decay is None else {**config, "weight_decay": self.weight_decay}

    @staticmethod
    def from_config(config):
        config = dict(config)
        name = config.pop("name")
        if name.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
        return OPTIMIZERS[name.lower()](**config)


class SGD(Optimizer):
    """p -= lr * g; with momentum: m = momentum * m - lr * g, p += m (Nesterov: p += momentum * m - lr * g).

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.01.
        momentum (float): how much of the last velocity each step keeps, >= 0. Defaults to 0.0.
        nesterov (bool): Nesterov momentum. Defaults to False.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("m",) if momentum else ()

    def update(self, p, g, slots, t):
        lr = self.learning_rate
        if not self.momentum:
            p -= lr * g
            return
        m = slots["m"]
        m *= self.momentum
        m -= lr * g
        if self.nesterov:
            p += self.momentum * m - lr * g
        else:
            p += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with exactly Keras's update, so equal weights take equal steps in both engines:

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1);   v += (g*g - v) * (1 - beta_2)
        p -= alpha * m / (sqrt(v) + epsilon)

    (The textbook form adds epsilon to the bias-corrected sqrt(v_hat): close, not equal.)

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        beta_1 (float): decay of the first moment m. Defaults to 0.9.
        beta_2 (float): decay of the second moment v. Defaults to 0.999.
        epsilon (float): added to sqrt(v) against division by zero. Defaults to 1e-7.
        amsgrad (bool): divide by the largest v seen so far (AMSGrad). Defaults to False.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.amsgrad = bool(amsgrad)  # use the largest v so far: v_hat = max(v_hat, v)
        if self.amsgrad:
            self.slot_names = ("m", "v", "v_hat")
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _scalars(self, dt, t):
        """alpha and the other scalars of step t, computed in the param's dtype as Keras does."""
        with np.errstate(over="ignore"):  # an absurd learning rate becomes Inf, and the step is refused
            alpha = dt(self.learning_rate) * np.sqrt(dt(1) - dt(self.beta_2) ** dt(t)) / (dt(1) - dt(self.beta_1) ** dt(t))
        return alpha, dt(1 - self.beta_1), dt(1 - self.beta_2), dt(self.epsilon)

    def update(self, p, g, slots, t):
        dt = p.dtype.type
        alpha = self._scalars(dt, t)[0]
        m, v = slots["m"], slots["v"]
        m += (g - m) * dt(1 - self.beta_1)
        v += (g * g - v) * dt(1 - self.beta_2)
        if self.amsgrad:
            v_hat = slots["v_hat"]
            v_hat[...] = array_module(v).maximum(v_hat, v)
            v = v_hat
        p -= (m * alpha) / (array_module(v).sqrt(v) + dt(self.epsilon))

    def _compiled_step(self, pairs, slots):
        """On the Numba backend (host arrays) or a GPU (device arrays), arrays of one dtype: the
        same update (AdamW's weight decay included) in compiled passes per param
        (numba_kernels.adam_step, cupy_kernels.adam_step), checked for finiteness first, then
        applied: all or nothing as the NumPy path, without its copies (what that saves per step:
        docs/benchmarks.md, "What each choice in the kernels buys")."""
        kernels = None if self.amsgrad else self._kernels_for_step("adam_step", pairs)
        if kernels is None:
            return False
        dt = pairs[0][1].dtype.type
        return self._check_then_commit(kernels.adam_step, pairs, slots, *self._scalars(dt, self.iterations + 1))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                **({"amsgrad": True} if self.amsgrad else {})}


class RMSprop(Optimizer):
    """RMSprop with exactly Keras's update:

        v = rho v + (1 - rho) g^2          (centered: a = rho a + (1 - rho) g, and v - a^2 below)
        step = lr g / sqrt(v + epsilon)
        p -= step, or with momentum: m = momentum m + step, p -= m

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        rho (float): decay of the average of g^2. Defaults to 0.9.
        momentum (float): momentum on the steps. Defaults to 0.0.
        epsilon (float): added under the square root. Defaults to 1e-7.
        centered (bool): divide by the variance of g rather than its second moment. Defaults to False.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= rho < 1 or not 0 <= momentum < 1:
            raise ValueError(f"rho and momentum must be in [0, 1), got {rho!r}, {momentum!r}")
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), bool(centered)
        self.slot_names = ("v",) + (("m",) if momentum else ()) + (("a",) if centered else ())

    def update(self, p, g, slots, t):
        dt = p.dtype.type
        v = slots["v"]
        v[...] = dt(self.rho) * v + dt(1 - self.rho) * (g * g)
        if self.centered:
            a = slots["a"]
            a[...] = dt(self.rho) * a + dt(1 - self.rho) * g
            denominator = v - a * a + dt(self.epsilon)
        else:
            denominator = v + dt(self.epsilon)
        step = dt(self.learning_rate) * g / array_module(p).sqrt(denominator)
        if self.momentum:
            m = slots["m"]
            m[...] = dt(self.momentum) * m + step
            p -= m
        else:
            p -= step

    def _compiled_step(self, pairs, slots):
        """On the Numba backend, host arrays of one dtype: the same update in compiled passes
        per param (numba_kernels.rmsprop_step), checked then applied as Adam's (what that saves
        per step: docs/benchmarks.md, "What each choice in the kernels buys")."""
        kernels = self._kernels_for_step("rmsprop_step", pairs)
        if kernels is None:
            return False
        dt = pairs[0][1].dtype.type
        with np.errstate(over="ignore"):  # an absurd learning rate becomes Inf, and the step is refused
            lr = dt(self.learning_rate)
        return self._check_then_commit(kernels.rmsprop_step, pairs, slots, lr, dt(self.rho), dt(1 - self.rho),
                                       dt(self.epsilon), dt(self.momentum))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default 0.004): p -= p * weight_decay * lr before
    each Adam step.

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        weight_decay (float): the decoupled decay. Defaults to 0.004.
        beta_1 (float): decay of the first moment m. Defaults to 0.9.
        beta_2 (float): decay of the second moment v. Defaults to 0.999.
        epsilon (float): added to sqrt(v) against division by zero. Defaults to 1e-7.
        amsgrad (bool): as Adam's. Defaults to False.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """a += g^2 (from initial_accumulator_value);  p -= lr g / sqrt(a + epsilon).

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        initial_accumulator_value (float): the accumulator a's starting value. Defaults to 0.1.
        epsilon (float): added under the square root. Defaults to 1e-7.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    slot_names = ("a",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def initial_slot(self, name, p):
        return array_module(p).full_like(p, self.initial_accumulator_value)

    def update(self, p, g, slots, t):
        dt = p.dtype.type
        a = slots["a"]
        a += g * g
        p -= dt(self.learning_rate) * g / array_module(p).sqrt(a + dt(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """a = rho a + (1 - rho) g^2;  delta = -sqrt(d + eps) g / sqrt(a + eps);
    d = rho d + (1 - rho) delta^2;  p += lr delta.

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001 (1.0 is the
            paper's).
        rho (float): decay of both running averages. Defaults to 0.95.
        epsilon (float): added under the square roots. Defaults to 1e-7.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    slot_names = ("a", "d")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update(self, p, g, slots, t):
        dt, xp = p.dtype.type, array_module(p)
        a, d = slots["a"], slots["d"]
        rho, eps = dt(self.rho), dt(self.epsilon)
        a[...] = rho * a + (1 - rho) * (g * g)
        delta = -(xp.sqrt(d + eps) * g) / xp.sqrt(a + eps)
        d[...] = rho * d + (1 - rho) * (delta * delta)
        p += dt(self.learning_rate) * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """m += (g - m)(1 - beta_1);  u = max(beta_2 u, |g|);  p -= lr m / ((1 - beta_1^t)(u + epsilon)).

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        beta_1 (float): decay of the first moment m. Defaults to 0.9.
        beta_2 (float): decay of the infinity norm u. Defaults to 0.999.
        epsilon (float): added to u against division by zero. Defaults to 1e-7.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update(self, p, g, slots, t):
        dt, xp = p.dtype.type, array_module(p)
        m, u = slots["m"], slots["u"]
        m += (g - m) * dt(1 - self.beta_1)
        u[...] = xp.maximum(dt(self.beta_2) * u, xp.abs(g))
        p -= dt(self.learning_rate) * m / ((dt(1) - dt(self.beta_1) ** dt(t)) * (u + dt(self.epsilon)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum, Keras's form: with mu_t = beta_1 (1 - 0.5 * 0.96^t) and
    P_t = mu_1 ... mu_t,  m_hat = mu_{t+1} m / (1 - P_t mu_{t+1}) + (1 - mu_t) g / (1 - P_t),
    v_hat = v / (1 - beta_2^t),  p -= lr m_hat / (sqrt(v_hat) + epsilon).

    Args:
        learning_rate (float | LearningRateSchedule): the step size. Defaults to 0.001.
        beta_1 (float): decay of the first moment m. Defaults to 0.9.
        beta_2 (float): decay of the second moment v. Defaults to 0.999.
        epsilon (float): added to sqrt(v) against division by zero. Defaults to 1e-7.

    The keywords every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
    ema_momentum, ema_overwrite_frequency) are Optimizer's.
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._products = {0: 1.0}  # t -> P_t, computed once per step (and again after a load)

    def _mu(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _product(self, t):
        if t not in self._products:
            self._products = {t: self._product(t - 1) * self._mu(t)} if t - 1 in self._products else \
                {t: float(np.prod([self._mu(i) for i in range(1, t + 1)]))}
        return self._products[t]

    def update(self, p, g, slots, t):
        dt, xp = p.dtype.type, array_module(p)
        mu_t, mu_next, product = dt(self._mu(t)), dt(self._mu(t + 1)), dt(self._product(t))
        m, v = slots["m"], slots["v"]
        m += (g - m) * dt(1 - self.beta_1)
        v += (g * g - v) * dt(1 - self.beta_2)
        m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu_t) * g / (1 - product)
        v_hat = v / (dt(1) - dt(self.beta_2) ** dt(t))
        p -= m_hat * dt(self.learning_rate) / (xp.sqrt(v_hat) + dt(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


OPTIMIZERS = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, "adamw": AdamW, "adagrad": Adagrad,
              "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam}


def get(identifier):
    """An optimizer from an instance or a name ("adam", "sgd")."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; valid optimizers: {', '.join(OPTIMIZERS)} "
                     "or an instance such as minicnn.optimizers.Adam()")
