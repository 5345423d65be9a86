"""Layer 2: studies. A study is a set of cells (one run's settings each) keyed by one function
(:mod:`robotcl.study.keys`), read back by one reader of finished cells
(:mod:`robotcl.study.cells`), kept as small committed records (:mod:`robotcl.study.records`) and
run by executors behind one interface (:mod:`robotcl.study.executors`: local processes, Ray).

This layer imports only the single-run layer (experiment, outputs, config) and the parts below
it; the commands that build studies (:mod:`robotcl.commands`) import it.
"""
