"""Reproducing the paper: SR scoring with the standard protocol (`sreval`, `srmetrics`), the
Gatys optimisation baseline (`gatys`, `gatys_bench` for Table 1), the Fig. 5 objective comparison
(`fig5`) and its plots. An application floor: it may import the stages (train, runtime)."""
