"""Hemolysis (NCL ITA-1): % hemolysis of nanoparticles from a cyanmethemoglobin plate read at 540 nm."""
