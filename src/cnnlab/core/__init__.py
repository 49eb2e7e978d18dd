"""The low layer: small facts and tools every other part of cnnlab uses, importing nothing from the rest
(only `cnnlab.errors`, which holds every exit code, and `cnnlab.i18n`; tests/test_layout.py checks it).

- `sizes`: the output-size formula of convolution and pooling, and a layer's geometry;
- `autocast`: the number format of a forward pass (bf16 autocast or fp32);
- `files`: atomic writes (temp file, fsync, rename), the exit code of a failed write;
- `download`: one HTTP download with a progress bar, a timeout and a checksum check.

Nothing is imported here: `import cnnlab.core` stays free, each module is imported where it is used.
"""
