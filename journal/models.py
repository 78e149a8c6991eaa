# Models arrive with the journal issue (entries, sessions, assessments).
