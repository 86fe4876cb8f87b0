"""When lessons are due (schedule), sending what is due (dispatch), and the clock (runner)."""
