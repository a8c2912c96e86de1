"""Running a bundle's ONNX graphs: `Graph`, one onnxruntime session plus, on CUDA, per-call IO binding.
(export/graphs.py makes the graphs from torch modules; this module only runs them.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort


class Graph:
    """Runs one onnxruntime session; keeps no per-call state, so threads may share one Graph.

    With `bind_device` ("cuda" when the session runs on CUDA) every call builds its own IO binding:
    inputs are copied to the device once, outputs are written on the device and only the ones asked
    for come back to the host (or stay there, `to_host=False`, to feed the next graph directly).
    """

    def __init__(self, session: ort.InferenceSession, bind_device: str | None = None) -> None:
        self.session = session
        self.bind_device = bind_device
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(
        self, feeds: Mapping[str, np.ndarray | ort.OrtValue], outputs: Sequence[str], *, to_host: bool = True
    ) -> list:
        """The named outputs for `feeds`: numpy arrays, or device OrtValues when `to_host` is False."""
        if self.bind_device is None:
            return self.session.run(list(outputs), dict(feeds))
        binding = self.session.io_binding()  # one per call: bindings are not safe to share between threads
        for name, value in feeds.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, value)
        for name in outputs:
            binding.bind_output(name, self.bind_device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu() if to_host else binding.get_outputs()
