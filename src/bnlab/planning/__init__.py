"""Sequential studies: the rounds of `--until-decided`, and what `bnlab plan` says a claim costs."""
