"""Running pytracee on real hosts: the configuration file (:mod:`.config`), overrides of shipped
rules (:mod:`.overrides`), exceptions and de-duplication (:mod:`.exceptions`,
:mod:`.suppression`), hot reload (:mod:`.reload`), Prometheus metrics and health
(:mod:`.metrics`) and the progress line of a replay (:mod:`.progress`)."""
