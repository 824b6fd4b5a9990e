"""model.summary()'s table, as Keras's summary utilities: one row per layer with its output
shape, parameters and multiply-adds per image, and for a graph its Inputs and the tensors each
layer reads ("Connected to", in Keras's spelling `layer[call][0]`), then the totals.

    model.summary()                  # prints the table
    summary(model, print_fn=log)     # the same, written by your own function
    layer_calls(model)               # [(layer, input shape, output shape, [names it reads]), ...]

It reads the model's public core only (`layers`, `nodes`, `chain`, `input_shape`), so it
describes Sequential, functional and nested models alike.
"""


def summary(model, line_length=None, positions=None, print_fn=print, **kwargs):
    """Print model's table through print_fn. line_length sets the width of the rules (as Keras);
    positions and Keras's other options are accepted."""
    if not model.built:
        raise RuntimeError("the model is not built yet: give the first layer input_shape=, "
                           "or call fit/predict once")
    chain = model.chain
    rows = []
    # a graph's Input rows first, reading nothing ("-"), as Keras lists its InputLayers
    inputs = [] if chain else [(t.node.layer, t.shape, t.shape, ["-"]) for t in model.inputs]
    for layer, shape, out, inbound in inputs + layer_calls(model):
        row = [f"{layer.name} ({type(layer).__name__})", str(out), f"{layer.count_params():,}",
               f"{layer.count_macs(shape):,}"]
        rows.append(row if chain else [*row, ", ".join(inbound)])
    head = ["Layer (type)", "Output Shape", "Param #", "Mult-adds"] + ([] if chain else ["Connected to"])
    widths = [max(len(r[i]) for r in [head, *rows]) + 2 for i in range(len(head))]
    line = "-" * (line_length or sum(widths))

    def fmt(r):  # numbers right-aligned, names and shapes left-aligned, as Keras
        return "".join(c.rjust(w) if i in (2, 3) else ("  " + c if i == 4 else c).ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
    trainable = sum(p.size for layer in model.layers if layer.trainable for p in layer.params.values())
    total_macs = sum(int(r[3].replace(",", "")) for r in rows)
    text = [f'Model: "{model.name}"', line, fmt(head), "=" * len(line), *map(fmt, rows), "=" * len(line),
            f"Total params: {model.count_params():,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {model.count_params() - trainable:,}",
            f"Forward multiply-adds per image: {total_macs:,}", line]
    print_fn("\n".join(text).rstrip())


def layer_calls(model):
    """(layer, input shape, output shape, names of the layers it reads) for each layer of a built
    model, with its first call's shapes: a layer called twice is one row, reading both inputs."""
    if getattr(model, "_subclassed", False):  # a model of your own: no graph, each layer as its first call built it
        return [(layer, layer.input_shape, layer.compute_output_shape(layer.input_shape), [])
                for layer in model.layers if layer.built]
    if model.chain:  # each layer reads the one before: walk the shapes down the stack
        entries, shape = [], model.input_shape
        for layer in model.layers:
            out = layer.compute_output_shape(shape)
            entries.append((layer, shape, out, []))
            shape = out
        return entries
    entries = {}
    for node in model.nodes:
        inbound = [_tensor_name(t) for t in node.inputs]
        if id(node.layer) in entries:
            entries[id(node.layer)][3].extend(inbound)
        else:
            shape = [t.shape for t in node.inputs] if node.many else node.inputs[0].shape
            entries[id(node.layer)] = (node.layer, shape, node.output.shape, inbound)
    return list(entries.values())


def _tensor_name(t):
    """Keras's name of a tensor in "Connected to": `layer[k][0]`, the output of the layer's k-th call."""
    k = next(i for i, n in enumerate(t.node.layer.nodes) if n is t.node)
    return f"{t.node.layer.name}[{k}][0]"
