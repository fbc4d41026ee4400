"""The state: the one package that speaks SQL, behind `state.base`."""
