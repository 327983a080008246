"""The DAG: where every artifact lives (`layout`), which models and requests exist (`kinds`), which jobs run
(`plan`) and their rendering for DVC (`dvc`). Stages read `layout` and `kinds`; nothing here runs a stage."""
