module example.com/callbackreceiver

go 1.22
