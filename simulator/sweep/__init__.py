"""Parameter sweeps: sweep files (spec), designs, engines, resumable records (store), analysis, plots."""
