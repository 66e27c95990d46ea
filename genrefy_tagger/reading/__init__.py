"""Reading audio: find the files, decode them, pick and level the windows, compute the features."""
