"""Write the pre-encoded form of a netlist: one 1-bit feature per LIVE encoded bit, threshold 1.

Its comparators are plain wires, so a generic synthesis of it measures the core as the streaming
top feeds it (input register of live bits, gates, head), without comparators or dead bits.

Usage: python tools/fit/preencode.py NETLIST OUT.json [TEST_SET.npz]
"""
import sys
import numpy as np
from logicforge.netlist.format import load, Netlist, Layer
from logicforge.netlist import passes, reference
net = load(sys.argv[1])
g, _ = passes.optimize(net)
offset = np.cumsum([0] + [len(t) for t in net.thresholds])
live = [int(offset[f] + net.thresholds[f].index(t)) for f, t in g.inputs]
new_index = np.zeros(net.num_inputs, dtype=np.int64)  # dead bits -> bit 0: only gates that ignore them read them
new_index[live] = np.arange(len(live))
l0 = net.layers[0]
layers = [Layer(l0.op, new_index[l0.a], new_index[l0.b])] + list(net.layers[1:])
n = len(live)
pre = Netlist(n, 1, [[1]] * n, layers, list(net.class_names), net.group_size, net.tau,
              dict(net.extra, preencoded_from=sys.argv[1])).validate()
# parity: same scores on test images
x = np.load(sys.argv[3])["x"][:2000] if len(sys.argv) > 3 else np.random.default_rng(0).integers(0, 256, (500, net.features))
bits = reference.thermometer(x, net.thresholds)[:, live]
s1, c1 = reference.evaluate(net, x)
s2, c2 = reference.evaluate(pre, bits)
assert np.array_equal(s1, s2) and np.array_equal(c1, c2)
pre.save(sys.argv[2])
print(n, "live input bits; scores identical on", len(x), "samples")
