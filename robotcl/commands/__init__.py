"""Layer 3: the commands that build studies (``robotcl compare``, ``experts``, ``gap``). Each
plans its cells and runs them through :mod:`robotcl.study`; reading and formatting their results
is :mod:`robotcl.reporting`'s, which imports none of these."""
