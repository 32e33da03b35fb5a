"""`sdn`: the controller's REST API from a shell, in the spirit of ovs-vsctl/ovs-ofctl.

    sdn switches                          sdn macs SWITCH
    sdn vlan show SWITCH PORT             sdn vlan set SWITCH PORT --tag 101
    sdn vlan set SWITCH PORT --trunks 101,102
    sdn vlan clear SWITCH PORT
    sdn vlans                             sdn topology
    sdn qos show [SWITCH [PORT]]          sdn qos set SWITCH PORT --max-rate 10M --queue 0:3M
    sdn qos rules SWITCH                  sdn qos rule-add SWITCH --match udp_dst=5001 --to-queue 1
    sdn lb                                sdn lb add --vip 10.0.0.100 --port 80 --backend IP:PORT
    sdn overlay                           sdn config [--reload]
    sdn bond set SWITCH NAME --members A,B --mode balance-slb --lacp active
    sdn trace SWITCH 'in_port=1,dl_src=...,dl_dst=...'
    sdn path SWITCH PORT SRC_MAC DST_MAC [--proto tcp --nw-dst IP --tp-dst 80]
    sdn plan CONFIG.yaml --switch br0 --dpid 1 --ports 1=vm1,2=vm2,3=uplink
    sdn routes [APP]                      sdn api METHOD PATH ['{"json": "body"}']

Human-readable tables by default, `--json` for scripts. The controller is at
`--url` (default $SDN_URL or http://127.0.0.1:8080); `--token` (or $SDN_TOKEN) is
sent as a bearer token. An error from the API is printed as it came, and the exit
status is 1 (2 for a command line the CLI itself refuses, 3 when the controller
cannot be reached).
"""
