"""The live collector: eBPF programs (bpf/) loaded through libbpf, events decoded into trace.Event JSON.

Modules: :mod:`.libbpf` (ctypes binding over the system libbpf.so.1),
:mod:`.objects` (which BPF object and BTF file to load: Tracee's discovery order),
:mod:`.privileges` (capabilities, and refusing files others could have planted),
:mod:`.collector` (load, attach, poll), :mod:`.ringbuf` (the ring buffer read
through mmap), :mod:`.events` and
:mod:`.decode` (the wire format into trace.Event JSON), :mod:`.filters` (Tracee's
event and scope syntax), :mod:`.printers` (table, json, templates) and :mod:`.cli`
(the ``tracee`` command).
"""
