#!/usr/bin/env python3
"""WAL frames per commit of a decision batch, replaying the statements of aim_store::sqlite_batch
(nonce claims, action rows, audit entries, Merkle nodes, chain head, activity counters) on a copy
of a database made by `aim-bench store` (docs/BENCHMARKS.md, 2026-12-07 04:20 section).

Usage:
  target/release/aim-bench store --database-url sqlite:///tmp/sdb/a.db --batch 7 --duration 6
  scripts/wal-frames.py VARIANT [BATCH] [AGENTS] [DB]
VARIANT is `base`, or a comma-separated list of parts to leave out (nonce, action, entry, node,
activity, head) and/or `drop:INDEX` to drop an index first. Frames are counted from the WAL's
growth (4,096-byte pages + 24-byte frame headers) with automatic checkpoints off.
"""
import sqlite3, os, shutil, sys, uuid, random, time
src=sys.argv[4] if len(sys.argv)>4 else "/tmp/sdb/a.db"; dst=src+".frames-copy"
variant=sys.argv[1] if len(sys.argv)>1 else "base"
skip=set(variant.split(","))
batch=int(sys.argv[2]) if len(sys.argv)>2 else 7
nagents=int(sys.argv[3]) if len(sys.argv)>3 else 16
for s in ["","-wal","-shm"]:
    if os.path.exists(dst+s): os.remove(dst+s)
shutil.copy(src,dst)
c=sqlite3.connect(dst,isolation_level=None)
c.execute("pragma journal_mode=wal"); c.execute("pragma wal_autocheckpoint=0"); c.execute("pragma synchronous=normal")
for ix in ["audit_entries_org","audit_entries_chain","action_decisions_agent_status"]:
    if "drop:"+ix in skip: c.execute("drop index "+ix)
c.execute("pragma wal_checkpoint(truncate)")
ent=c.execute("select org_id,at,event_type,actor,subject,payload,client_addr,seq,prev_hash,hash from audit_entries order by rowid desc limit 1").fetchone()
act=c.execute("select * from action_decisions order by rowid desc limit 1").fetchone()
org=ent[0]; seq=ent[7]; ts=int(time.time())
agents=[f"aim_{i:026d}" for i in range(nagents)]
def size(): 
    return os.path.getsize(dst+"-wal") if os.path.exists(dst+"-wal") else 0
frames=[]
n=0
for b in range(300):
    before=size()
    c.execute("begin immediate")
    for i in range(batch):
        n+=1; ag=agents[n%nagents]
        if "nonce" not in skip: c.execute("insert into agent_nonces values(?,?,?,?,?) on conflict do nothing",(ts+b//100,org,ag,uuid.uuid4().hex,0))
        aid=uuid.uuid7().bytes if hasattr(uuid,'uuid7') else (int(time.time()*1000)<<80 | n).to_bytes(16,'big')
        row=list(act); row[0]=aid; row[2]=ag; row[12]=int(time.time()*1000)
        if "action" not in skip: c.execute(f"insert into action_decisions values({','.join('?'*len(row))})",row)
    hd=c.execute("insert into audit_heads (org_id,size,head_hash,frontier,updated_at) values(?,0,x'',x'',0) on conflict(org_id) do update set size=audit_heads.size returning size",(org,)).fetchone()
    for i in range(batch):
        seq+=1
        eid=(int(time.time()*1000)<<80 | seq).to_bytes(16,'big')
        if "entry" not in skip: c.execute("insert into audit_entries (id,org_id,at,event_type,actor,subject,payload,client_addr,seq,prev_hash,hash) values(?,?,?,?,?,?,?,?,?,?,?)",(eid,org,ent[1],ent[2],ent[3],ent[4],ent[5],ent[6],seq,ent[8],ent[9]))
        size_=seq+1; lvl=0
        while size_ % (1<<lvl) == 0:
            if "node" not in skip: c.execute("insert into audit_nodes values(?,?,?,?,?)",(org,size_,lvl,(size_>>lvl)-1,os.urandom(32)))
            lvl+=1
    if "head" not in skip: c.execute("update audit_heads set size=size+? where org_id=?",(batch,org))
    for ag in set(agents[(n-i)%nagents] for i in range(batch)):
        if "activity" not in skip: c.execute("insert into agent_activity (agent_id,day,org_id,decisions,violations,results_ok,results_failed,key_proofs,key_proof_failures,challenges_passed,last_key_proof_at,last_activity_at) values(?,20000,?,1,0,0,0,0,0,0,NULL,1) on conflict(agent_id,day) do update set decisions=decisions+1",(ag,org))
    c.execute("commit")
    frames.append((size()-before)/(4096+24))
f=frames[20:]
print(variant,"batch",batch,"agents",nagents,"frames/commit avg %.1f"%(sum(f)/len(f)),"per decision %.2f"%(sum(f)/len(f)/batch))
