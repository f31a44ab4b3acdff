module differential/origin

go 1.19
