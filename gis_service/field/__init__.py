"""The field worker's day on the phone: duties today (my tasks, visits due, my patrols) and
the offline pack (my grid's micro-grids, people under care and open tasks) the web app keeps
on the device to work without a network."""
