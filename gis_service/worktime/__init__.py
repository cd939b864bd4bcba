"""Working time (工作时间): the office's calendar of working days, with China's public
holidays and adjusted working days (调休), its working hours, and deadlines counted in them."""
