"""The training room: config, datasets, threshold encoding, the logic layer (``functional``, with
the C++, PyTorch and Triton kernels; ``triton_packed`` evaluates a netlist on the GPU), the model,
the trainer, the netlist export and the training benchmark (``bench``).

May import: ``netlist`` (gates, format, reference, analysis), ``logicforge.errors`` /
``logicforge.fileio``, and torch. Not hdl, sim, boards or the command layer.
"""
