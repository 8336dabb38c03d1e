"""The live collector: eBPF programs (bpf/) loaded through libbpf, events decoded into trace.Event JSON.

Modules: :mod:`.libbpf` (ctypes binding over the system libbpf.so.1),
:mod:`.objects` (which BPF object and BTF file to load: Tracee's discovery order),
:mod:`.collector` (load, attach, read the ring buffer, decode), :mod:`.cli`
(the ``tracee`` command).
"""
