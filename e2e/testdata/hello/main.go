// hello is the e2e tests' app: it says it started, with its PID, then
// ticks until it is killed (the init restarts it when it is a service).
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Printf("hello-app: started pid %d\n", os.Getpid())
	for i := 1; ; i++ {
		time.Sleep(60 * time.Second)
		fmt.Printf("hello-app: tick %d\n", i)
	}
}
