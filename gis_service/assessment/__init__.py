"""考核评价: the indicators a street office is assessed by (GB/T 30428.4 and the ones in
common use), per area, department and person, a weighted composite with a grade, and points
for micro-grid leaders; every figure can be opened to the cases behind it."""
