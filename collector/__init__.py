"""The live collector: eBPF programs (bpf/) loaded through libbpf, events decoded into trace.Event JSON.

Modules: :mod:`.libbpf` (ctypes binding over the system libbpf.so.1),
:mod:`.objects` (which BPF object and BTF file to load: Tracee's discovery order),
:mod:`.privileges` (capabilities, and refusing files others could have planted),
:mod:`.loader` (loading what the kernel accepts: ring or perf buffers, kprobes
or their tracepoint emulation), :mod:`.collector` (configure, attach, poll),
:mod:`.ringbuf` and :mod:`.perfbuf` (the kernel's buffers read through mmap), :mod:`.wire`
(the wire formats: events, and the layouts of the structs shared with bpf/, checked against
the object's BTF with :mod:`.btf`) and :mod:`.decode` (records into trace.Event JSON), :mod:`.filters` (Tracee's
event and scope syntax), :mod:`.printers` (table, json, templates),
:mod:`.source` (the live event source the session reads) and :mod:`.cli`
(the ``tracee`` command).
"""
