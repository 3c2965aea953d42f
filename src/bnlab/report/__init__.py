"""Reports from a store, without torch: studydata → stats → findings (registry) → figures → document."""
