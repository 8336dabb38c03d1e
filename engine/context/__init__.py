"""Context kept across events and written onto findings: the process tree (:mod:`.proctree`),
container identities from the runtimes (:mod:`.containers`, :mod:`.runtimes`) and executable
hashes (:mod:`.exehash`), held together per run by :class:`.state.EventContext` and wired in by
the built-in plugin :mod:`.plugin` (``builtin-context``)."""
