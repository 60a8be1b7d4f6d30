"""The searcher core every algorithm plugs into: architecture parameters (`arch.py`,
`controller.py`), mixed ops run by mode (`mixed.py`), supernets for chain spaces
(`supernet.py`) and the DARTS cell space (`cells.py`), initialisation (`init.py`), the
loop with hooks (`loop.py`), selectors (`selectors.py`), latency losses and the
hard-target controller (`losses.py`), the repair (`repair.py`), typed configs
(`config.py`), scoring with shared weights (`evaluate.py`), checkpoints
(`checkpoint.py`) and step memory (`memory.py`)."""
