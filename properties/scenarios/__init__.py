"""Fixed scenarios run on the model: litmus files (``litmus``), ITF traces (``itf``) and their
replay step by step (``replay``)."""
