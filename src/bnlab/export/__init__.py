"""Meeting users in their tools: pandas frames, Jupyter, TensorBoard and MLflow, from a store.

No torch anywhere in this package: it reads what a study stored (bnlab.store) and writes it in
another tool's own format. Each tool is an optional extra; without it, one line names the extra.

    frames       bnlab.load(PATH) → pandas.DataFrame (results, probes, evals); StudyResult.df
    notebook     StudyResult._repr_html_: the verdict table and the main figure, inline
    tensorboard  one TensorBoard run per bnlab run: scalars per epoch, the configuration as HParams
    mlflow       one MLflow run per bnlab run, idempotently
    command      `bnlab export PATH --tensorboard DIR --mlflow URI`
"""
